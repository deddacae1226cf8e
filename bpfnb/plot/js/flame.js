// An interactive flame graph: hover a frame for its name and share, click it
// to zoom in (click a frame below it, or "Reset zoom", to zoom out), type in
// the search box to mark every frame whose name matches (a regular
// expression, or plain text when it is not one) and see their share.
// The tree comes from the kernel as {n: name, v: samples, c: [children]}.
const ROW = 18;

function render({ model, el }) {
  const root = model.get("_tree");
  const colours = model.get("_colours");
  const unit = model.get("_unit");
  let deepest = 0;
  const index = (node, parent, depth) => {
    node.p = parent;
    node.d = depth;
    node.c = node.c || [];
    deepest = Math.max(deepest, depth);
    for (const child of node.c) index(child, node, depth + 1);
  };
  index(root, null, 0);

  el.classList.add("bpfnb-flame");
  const bar = document.createElement("div");
  bar.style.cssText = "display:flex;gap:8px;align-items:center;margin:2px 0 4px;font-size:90%";
  const title = document.createElement("b");
  title.textContent = model.get("_title");
  const search = document.createElement("input");
  search.type = "search";
  search.placeholder = "search (regex)";
  search.className = "bpfnb-flame-search";
  search.style.cssText = "width:14em";
  const reset = document.createElement("button");
  reset.textContent = "Reset zoom";
  reset.className = "bpfnb-flame-reset";
  reset.disabled = true;
  const save = document.createElement("button");
  save.textContent = "Export for speedscope";
  save.className = "bpfnb-flame-export";
  save.title = "Save the stacks as a file that speedscope (www.speedscope.app) opens";
  const fileName = `${model.get("_title").replace(/[^\w.-]+/g, "_") || "flame"}.speedscope.json`;
  bar.append(title, search, reset, save);
  const status = document.createElement("div");
  status.className = "bpfnb-flame-status";
  status.style.cssText = "font-family:monospace;font-size:85%;min-height:1.3em;white-space:nowrap;overflow:hidden";
  const scroller = document.createElement("div");
  scroller.style.cssText = "max-height:600px;overflow-y:auto";
  const graph = document.createElement("div");
  graph.className = "bpfnb-flame-graph";
  graph.style.cssText = `position:relative;height:${(deepest + 1) * ROW}px;font:12px sans-serif`;
  scroller.append(graph);
  el.append(bar, scroller, status);

  let zoomed = root;
  let matcher = null;
  const share = (value) => `${value.toLocaleString()} ${unit} (${((100 * value) / root.v).toFixed(1)}%)`;

  const frame = (node, left, width, below) => {
    const box = document.createElement("div");
    box.className = "bpfnb-frame";
    box.dataset.name = node.n;
    box.dataset.depth = String(node.d);
    const matched = matcher !== null && matcher.test(node.n);
    box.style.cssText =
      `position:absolute;box-sizing:border-box;height:${ROW - 1}px;` +
      `top:${(deepest - node.d) * ROW}px;left:${left * 100}%;width:${width * 100}%;` +
      `background:${matched ? "#e040fb" : colours[node.n] || "#e8a33d"};border-right:1px solid #fff;` +
      `overflow:hidden;white-space:nowrap;text-overflow:ellipsis;padding:0 3px;line-height:${ROW - 1}px;` +
      `cursor:pointer;opacity:${below ? 0.55 : 1}`;
    // A label needs room for a few letters; a thinner frame shows its name on hover only.
    if (width * (graph.clientWidth || 1000) >= 24) box.textContent = node.n;
    box.title = `${node.n}\n${share(node.v)}`;
    box.addEventListener("mouseenter", () => {
      status.textContent = `${node.n}: ${share(node.v)}`;
    });
    box.addEventListener("mouseleave", () => {
      status.textContent = summary();
    });
    box.addEventListener("click", () => {
      zoomed = node;
      draw();
    });
    graph.append(box);
  };

  const place = (node, left, width, pixels) => {
    if (width * pixels < 1) return; // thinner than a pixel: only ink
    frame(node, left, width, false);
    let x = left;
    for (const child of node.c) {
      const part = (width * child.v) / node.v;
      place(child, x, part, pixels);
      x += part;
    }
  };

  const matchedValue = (node) => (matcher.test(node.n) ? node.v : node.c.reduce((sum, c) => sum + matchedValue(c), 0));

  // What the status line says when the mouse is on no frame.
  const summary = () => {
    if (matcher !== null) return `matched: ${share(matchedValue(root))}`;
    if (zoomed !== root) return `zoomed to ${zoomed.n}: ${share(zoomed.v)}`;
    return `${share(root.v)} in all; hover a frame, click to zoom`;
  };

  const draw = () => {
    graph.replaceChildren();
    for (let above = zoomed.p; above; above = above.p) frame(above, 0, 1, true);
    place(zoomed, 0, 1, graph.clientWidth || 1000);
    reset.disabled = zoomed === root;
    status.textContent = summary();
  };

  search.addEventListener("input", () => {
    const text = search.value.trim();
    if (!text) {
      matcher = null;
    } else {
      try {
        matcher = new RegExp(text, "i");
      } catch (error) {
        matcher = new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i");
      }
    }
    draw();
  });
  reset.addEventListener("click", () => {
    zoomed = root;
    draw();
  });
  save.addEventListener("click", () => {
    const file = new Blob([model.get("_speedscope")], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(file);
    link.download = fileName;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  });
  // Lay out again once the view has its real width (frames thinner than a pixel are left out).
  requestAnimationFrame(() => {
    draw();
    scroller.scrollTop = scroller.scrollHeight;
  });
  draw();
}

export default { render };
