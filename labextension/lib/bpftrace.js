// A CodeMirror stream mode for bpftrace's language: probes, maps, variables,
// builtins and functions, strings, numbers and comments. bpftrace has no
// CodeMirror language of its own, and C colours its probes and @maps wrongly.

const PROBE_TYPES = new Set([
  'BEGIN', 'END', 'kprobe', 'kretprobe', 'uprobe', 'uretprobe', 'usdt', 'tracepoint', 'profile', 'interval',
  'software', 'hardware', 'watchpoint', 'asyncwatchpoint', 'kfunc', 'kretfunc', 'iter',
  'k', 'kr', 'u', 'ur', 'U', 't', 'p', 'i', 's', 'h', 'w', 'aw', 'f', 'fr', 'it'
]);
const KEYWORDS = new Set(['if', 'else', 'unroll', 'while', 'return', 'struct', 'union', 'enum', 'sizeof', 'offsetof']);
const BUILTINS = new Set([
  'pid', 'tid', 'uid', 'gid', 'nsecs', 'elapsed', 'numaid', 'cpu', 'comm', 'kstack', 'ustack', 'func', 'probe',
  'curtask', 'rand', 'cgroup', 'cpid', 'retval', 'args', 'username',
  'arg0', 'arg1', 'arg2', 'arg3', 'arg4', 'arg5', 'arg6', 'arg7', 'arg8', 'arg9',
  'sarg0', 'sarg1', 'sarg2', 'sarg3', 'sarg4', 'sarg5', 'sarg6', 'sarg7', 'sarg8', 'sarg9',
  'printf', 'time', 'join', 'str', 'buf', 'ksym', 'usym', 'kaddr', 'uaddr', 'reg', 'system', 'exit', 'cgroupid',
  'ntop', 'pton', 'cat', 'signal', 'strncmp', 'override', 'print', 'strftime', 'path', 'macaddr', 'cgroup_path',
  'bswap', 'skboutput', 'uptr', 'kptr', 'unwatch',
  'count', 'sum', 'avg', 'min', 'max', 'stats', 'hist', 'lhist', 'delete', 'clear', 'zero'
]);

function string(stream) {
  let escaped = false;
  let ch;
  while ((ch = stream.next()) != null) {
    if (ch === '"' && !escaped) {
      break;
    }
    escaped = !escaped && ch === '\\';
  }
  return 'string';
}

export const bpftrace = {
  name: 'bpftrace',
  startState: () => ({ depth: 0, inComment: false, inProbe: false }),
  token(stream, state) {
    if (state.inComment) {
      state.inComment = !stream.skipTo('*/');
      if (!state.inComment) {
        stream.match('*/');
      } else {
        stream.skipToEnd();
      }
      return 'comment';
    }
    if (stream.eatSpace()) {
      state.inProbe = false;
      return null;
    }
    if (state.inProbe) {
      // The rest of a probe: :sched:sched_switch, :/bin/bash:readline, :hz:99.
      state.inProbe = false;
      if (stream.match(/^[^\s{,]+/)) {
        return 'atom';
      }
    }
    if (stream.match('//')) {
      stream.skipToEnd();
      return 'comment';
    }
    if (stream.match('/*')) {
      state.inComment = true; // the next calls read on to its end
      return 'comment';
    }
    if (stream.sol() && stream.match(/^\s*#.*/)) {
      return 'meta';
    }
    if (stream.eat('"')) {
      return string(stream);
    }
    if (stream.match(/^@\w*/)) {
      return 'variable-2';
    }
    if (stream.match(/^\$\w+/)) {
      return 'def';
    }
    if (stream.match(/^(?:0[xX][0-9a-fA-F]+|\d+)/)) {
      return 'number';
    }
    const word = stream.match(/^[A-Za-z_]\w*/);
    if (word) {
      if (state.depth === 0 && PROBE_TYPES.has(word[0]) && (stream.peek() === ':' || /^(BEGIN|END)$/.test(word[0]))) {
        state.inProbe = stream.peek() === ':';
        return 'keyword';
      }
      if (KEYWORDS.has(word[0])) {
        return 'keyword';
      }
      return BUILTINS.has(word[0]) ? 'builtin' : 'variable';
    }
    const ch = stream.next();
    if (ch === '{') {
      state.depth += 1;
      return 'bracket';
    }
    if (ch === '}') {
      state.depth = Math.max(0, state.depth - 1);
      return 'bracket';
    }
    return /[-+*/%&|^!<>=~?:]/.test(ch) ? 'operator' : null;
  },
  languageData: { commentTokens: { line: '//', block: { open: '/*', close: '*/' } } }
};
