// Give code cells that start with %%bpf the C mime type, so that CodeMirror
// highlights their body as C. The notebook resets every code cell's mime type
// to the kernel's language when it learns it, so each cell is checked again
// whenever its text or its mime type changes.
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { INotebookTracker } from '@jupyterlab/notebook';

const BPF_CELL = /^\s*%%bpf\b/;
const C_MIME = 'text/x-csrc';

function refresh(languages, notebook, cell) {
  if (cell.model.type !== 'code') {
    return;
  }
  const current = cell.model.mimeType;
  const isBpf = BPF_CELL.test(cell.model.sharedModel.getSource());
  if (isBpf && current !== C_MIME) {
    // The editor loads the language of a new mime type asynchronously and
    // applies whichever load finishes last: wait for the current one first.
    Promise.resolve(languages.getLanguage(current)).finally(() =>
      setTimeout(() => {
        if (BPF_CELL.test(cell.model.sharedModel.getSource())) {
          cell.model.mimeType = C_MIME;
        }
      }, 0)
    );
  } else if (!isBpf && current === C_MIME) {
    cell.model.mimeType = notebook.codeMimetype;
  }
}

function track(languages, notebook) {
  const seen = new WeakSet();
  const refreshAll = () => {
    for (const cell of notebook.widgets) {
      if (!seen.has(cell)) {
        seen.add(cell);
        const again = () => refresh(languages, notebook, cell);
        cell.model.contentChanged.connect(again);
        cell.model.mimeTypeChanged.connect(again);
      }
      refresh(languages, notebook, cell);
    }
  };
  // The notebook makes the widgets of new cells in its own handler of this signal.
  notebook.model.cells.changed.connect(() => setTimeout(refreshAll, 0));
  refreshAll();
}

const plugin = {
  id: 'bpfnb-highlight:plugin',
  description: 'Highlight %%bpf cells as C',
  autoStart: true,
  requires: [INotebookTracker, IEditorLanguageRegistry],
  activate: (app, tracker, languages) => {
    tracker.widgetAdded.connect((_, panel) => {
      panel.context.ready.then(() => track(languages, panel.content));
    });
  }
};

export default plugin;
