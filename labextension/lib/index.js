// Give code cells that start with %%bpf the C mime type, and cells that start
// with %%bpftrace bpftrace's (a language this extension registers), so that
// CodeMirror highlights their bodies. The notebook resets every code cell's
// mime type to the kernel's language when it learns it, so each cell is
// checked again whenever its text or its mime type changes.
import { LanguageSupport, StreamLanguage } from '@codemirror/language';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { INotebookTracker } from '@jupyterlab/notebook';

import { bpftrace } from './bpftrace';

const C_MIME = 'text/x-csrc';
const BPFTRACE_MIME = 'text/x-bpftrace';
// The first that matches wins: %%bpftrace also starts with %%bpf.
const CELL_LANGUAGES = [
  [/^\s*%%bpftrace\b/, BPFTRACE_MIME],
  [/^\s*%%bpf\b/, C_MIME]
];
const OURS = new Set(CELL_LANGUAGES.map(([, mime]) => mime));

function wanted(cell) {
  const source = cell.model.sharedModel.getSource();
  const found = CELL_LANGUAGES.find(([magic]) => magic.test(source));
  return found ? found[1] : null;
}

function refresh(languages, notebook, cell) {
  if (cell.model.type !== 'code') {
    return;
  }
  const current = cell.model.mimeType;
  const mime = wanted(cell);
  if (mime && current !== mime) {
    // The editor loads the language of a new mime type asynchronously and
    // applies whichever load finishes last: wait for the current one first.
    Promise.resolve(languages.getLanguage(current)).finally(() =>
      setTimeout(() => {
        if (wanted(cell) === mime) {
          cell.model.mimeType = mime;
        }
      }, 0)
    );
  } else if (!mime && OURS.has(current)) {
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
  description: 'Highlight %%bpf cells as C and %%bpftrace cells as bpftrace',
  autoStart: true,
  requires: [INotebookTracker, IEditorLanguageRegistry],
  activate: (app, tracker, languages) => {
    languages.addLanguage({
      name: 'bpftrace',
      mime: BPFTRACE_MIME,
      extensions: ['bt'],
      load: async () => new LanguageSupport(StreamLanguage.define(bpftrace))
    });
    tracker.widgetAdded.connect((_, panel) => {
      panel.context.ready.then(() => track(languages, panel.content));
    });
  }
};

export default plugin;
