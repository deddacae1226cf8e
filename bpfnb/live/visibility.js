// Tells the kernel whether this view of a live plot can be seen: on the
// screen (not scrolled away, not in a hidden tab or panel) in a browser tab
// that is showing. It says so when that changes and, while seen, once a
// second; a view that goes quiet (its page closed, its browser gone) counts
// as unseen after a few seconds, and one that is disposed says goodbye.
const BEAT_MS = 1000;

function render({ model, el }) {
  const view = Math.random().toString(36).slice(2);
  let onScreen = false;
  let watched = null;
  const plot = () => el.closest(".bpfnb-live") || el;
  const tell = () => {
    model.send({ view, seen: onScreen && document.visibilityState === "visible" });
  };
  const screen = new IntersectionObserver((entries) => {
    onScreen = entries[entries.length - 1].isIntersecting;
    tell();
  });
  const beat = () => {
    // The view is put into the plot's box after it is made: watch the box once it is there.
    const target = plot();
    if (target !== watched) {
      if (watched) screen.unobserve(watched);
      screen.observe(target);
      watched = target;
    }
    if (onScreen && document.visibilityState === "visible") tell();
  };
  const timer = setInterval(beat, BEAT_MS);
  document.addEventListener("visibilitychange", tell);
  beat();
  return () => {
    clearInterval(timer);
    screen.disconnect();
    document.removeEventListener("visibilitychange", tell);
    model.send({ view, seen: false, gone: true });
  };
}

export default { render };
