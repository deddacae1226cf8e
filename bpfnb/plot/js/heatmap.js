// A heatmap picture whose cells can be clicked: the kernel finds the cell
// under the click (it knows where it drew what) and sends back that cell's
// box, to outline, and its rows, to list under the picture.
function element(tag, className, css) {
  const made = document.createElement(tag);
  made.className = className;
  made.style.cssText = css;
  return made;
}

function render({ model, el }) {
  el.classList.add("bpfnb-heatmap");
  const frame = element("div", "bpfnb-heatmap-frame", "position:relative;display:inline-block;max-width:100%");
  const picture = element("img", "bpfnb-heatmap-picture", "display:block;max-width:100%;cursor:crosshair");
  picture.alt = "heatmap";
  const outline = element(
    "div", "bpfnb-heatmap-outline", "position:absolute;border:2px solid #e6007e;pointer-events:none;display:none"
  );
  frame.append(picture, outline);
  const hint = element("div", "bpfnb-heatmap-hint", "font-size:85%;color:#666");
  hint.textContent = "Click a cell to list its rows.";
  const rows = element("div", "bpfnb-heatmap-rows", "max-height:320px;overflow:auto;font-size:85%");
  el.append(frame, hint, rows);

  const show = () => {
    picture.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(model.get("_svg"));
  };
  const picked = () => {
    const box = model.get("_box");
    if (box.length === 4) {
      const [left, top, right, bottom] = box;
      Object.assign(outline.style, {
        display: "block",
        left: `${left * 100}%`,
        top: `${top * 100}%`,
        width: `${(right - left) * 100}%`,
        height: `${(bottom - top) * 100}%`,
      });
    } else {
      outline.style.display = "none";
    }
    rows.innerHTML = model.get("_rows");
  };
  picture.addEventListener("click", (event) => {
    const area = picture.getBoundingClientRect();
    model.send({ x: (event.clientX - area.left) / area.width, y: (event.clientY - area.top) / area.height });
  });
  model.on("change:_svg", show);
  model.on("change:_rows", picked);
  model.on("change:_box", picked);
  show();
  picked();
  return () => {
    model.off("change:_svg", show);
    model.off("change:_rows", picked);
    model.off("change:_box", picked);
  };
}

export default { render };
