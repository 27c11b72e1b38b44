/* CRM expression language, browser twin of core/expressions.py (see docs/expressions.md).
 * Plain script, no build step, no dependencies, no eval. Exposes window.CrmExpr and,
 * under node, module.exports. Both evaluators must agree on tests/expression_cases.json.
 */
(function () {
  'use strict';

  var NUMERIC = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/;
  var ISO_DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})([T ].*)?$/;
  var DAY_MS = 86400000;
  var has = function (obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); };

  class ExpressionError extends Error {
    constructor(message, path) {
      super(message + ' (at ' + (path || 'root') + ')');
      this.name = 'ExpressionError';
      this.path = path || '';
    }
  }

  // ------------------------------------------------------------ value helpers

  function isNumber(v) { return typeof v === 'number'; }
  function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date); }

  /* Keep float noise (0.1 + 0.2) out of results: non-integers get 15 significant digits. */
  function clean(n) {
    if (typeof n !== 'number' || !isFinite(n)) return null;
    if (Number.isInteger(n)) return n === 0 ? 0 : n;
    return Number(n.toPrecision(15));
  }

  /* The number for a number or numeric string; null for anything else. */
  function num(v) {
    if (isNumber(v)) return isFinite(v) ? v : null;
    if (typeof v === 'string' && NUMERIC.test(v.trim())) {
      var n = Number(v.trim());
      return isFinite(n) ? n : null;
    }
    return null;
  }

  function plain(v) { return v instanceof Date ? v.toISOString() : (v === undefined ? null : v); }

  /* UTC midnight Date for a date or ISO string (time part ignored); null if invalid. */
  function toDate(v) {
    v = plain(v);
    var m = typeof v === 'string' ? ISO_DATE.exec(v) : null;
    if (!m) return null;
    var y = +m[1], mo = +m[2], d = +m[3];
    var t = new Date(0);
    t.setUTCFullYear(y, mo - 1, d);
    if (y < 1 || t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return null;
    return t;
  }

  function pad(n, width) { var s = String(n); while (s.length < width) s = '0' + s; return s; }

  function isoDate(t) {
    if (isNaN(t.getTime())) return null;
    var y = t.getUTCFullYear();
    if (y < 1 || y > 9999) return null;
    return pad(y, 4) + '-' + pad(t.getUTCMonth() + 1, 2) + '-' + pad(t.getUTCDate(), 2);
  }

  function zeros(n) { return new Array(n + 1).join('0'); }

  /* Numbers as text without exponent (1e-7 -> "0.0000001"), like Python's Decimal 'f' format. */
  function plainNumber(n) {
    var s = String(clean(n));
    var m = /^(-?)([0-9]+)(?:\.([0-9]+))?e([+-][0-9]+)$/.exec(s);
    if (!m) return s;
    var digits = m[2] + (m[3] || ''), exp = Number(m[4]) - (m[3] || '').length;
    if (exp >= 0) return m[1] + digits + zeros(exp);
    var point = digits.length + exp;
    return m[1] + (point > 0 ? digits.slice(0, point) + '.' + digits.slice(point) : '0.' + zeros(-point) + digits);
  }

  function text(v) {
    v = plain(v);
    if (v === null) return '';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (isNumber(v)) return isFinite(v) ? plainNumber(v) : '';
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return v.map(text).join(',');
    return '';
  }

  function truthy(v) {
    if (v === null || v === undefined) return false;
    if (typeof v === 'boolean') return v;
    if (isNumber(v)) return v === v && v !== 0;
    if (typeof v === 'string' || Array.isArray(v)) return v.length > 0;
    return true;
  }

  function equal(a, b) {
    a = plain(a); b = plain(b);
    if (a === null || b === null) return a === null && b === null;
    if (typeof a === 'boolean' || typeof b === 'boolean') return a === b;
    if (isNumber(a) || isNumber(b)) {
      var x = num(a), y = num(b);
      return x !== null && y !== null && x === y;
    }
    if (typeof a === 'string' && typeof b === 'string') return a === b;
    if (Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) return false;
      for (var i = 0; i < a.length; i++) if (!equal(a[i], b[i])) return false;
      return true;
    }
    return false;
  }

  /* Strings compare by Unicode code point (as Python does), not UTF-16 unit. */
  function compareStrings(a, b) {
    var i = 0, j = 0;
    while (i < a.length && j < b.length) {
      var x = a.codePointAt(i), y = b.codePointAt(j);
      if (x !== y) return x < y ? -1 : 1;
      i += x > 0xffff ? 2 : 1;
      j += y > 0xffff ? 2 : 1;
    }
    return i < a.length ? 1 : j < b.length ? -1 : 0;
  }

  /* -1/0/1, or null when the values are not comparable (null, bool, mixed). */
  function compare(a, b) {
    a = plain(a); b = plain(b);
    if (typeof a === 'boolean' || typeof b === 'boolean') return null;
    if (isNumber(a) || isNumber(b)) {
      var x = num(a), y = num(b);
      if (x === null || y === null) return null;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (typeof a === 'string' && typeof b === 'string') return compareStrings(a, b);
    return null;
  }

  function cmpOp(test) {
    return function (a, b) { var c = compare(a, b); return c !== null && test(c); };
  }

  /* Coerce every operand to a number; any null/non-numeric operand gives null. */
  function arith(fn) {
    return function () {
      var nums = Array.prototype.map.call(arguments, num);
      for (var i = 0; i < nums.length; i++) if (nums[i] === null) return null;
      var r = fn.apply(null, nums);
      return r === null ? null : clean(r);
    };
  }

  function intArg(n) { return n !== null && Number.isInteger(n) ? n : null; }

  /* Round half away from zero via decimal-string shifting, so 1.005 -> 1.01 as in Python. */
  function shift(n, digits) {
    var parts = String(n).split('e');
    return Number(parts[0] + 'e' + (Number(parts[1] || 0) + digits));
  }

  function roundHalfAway(x, digits) {
    digits = digits === undefined ? 0 : intArg(digits);
    if (digits === null || digits < -10 || digits > 10) return null;
    x = clean(x);
    if (digits >= 0 && Number.isInteger(x)) return x;
    var r = shift(Math.round(shift(Math.abs(x), digits)), -digits);
    return x < 0 ? -r : r;
  }

  // ------------------------------------------------------------ operators

  function opVar(ctx, args) {
    var value = ctx.data, name = args[0];
    if (name !== '') {
      var segs = name.split('.');
      for (var i = 0; i < segs.length; i++) {
        var seg = segs[i];
        if (Array.isArray(value)) {
          value = /^[0-9]+$/.test(seg) && +seg < value.length ? value[+seg] : null;
        } else if (isObject(value)) {
          value = has(value, seg) ? value[seg] : null;
        } else {
          value = null;
        }
        if (value === null || value === undefined) { value = null; break; }
      }
    }
    if (value === null && args.length > 1) return ctx.ev(args[1]);
    return value === undefined ? null : value;
  }

  function opIf(ctx, args) {
    for (var i = 0; i + 1 < args.length; i += 2) {
      if (truthy(ctx.ev(args[i]))) return ctx.ev(args[i + 1]);
    }
    return args.length % 2 ? ctx.ev(args[args.length - 1]) : null;
  }

  function opIn(x, container) {
    if (Array.isArray(container)) return container.some(function (item) { return equal(x, item); });
    return typeof container === 'string' && typeof x === 'string' && container.indexOf(x) !== -1;
  }

  function daysBetween(a, b) {
    var d1 = toDate(a), d2 = toDate(b);
    return d1 === null || d2 === null ? null : Math.round((d2 - d1) / DAY_MS);
  }

  function addDays(d, n) {
    var t = toDate(d);
    n = intArg(num(n));
    if (t === null || n === null || Math.abs(n) > 1e8) return null;
    return isoDate(new Date(t.getTime() + n * DAY_MS));
  }

  /* operator name -> function. Names in LAZY get (ctx, rawArgs); the rest get evaluated values. */
  var OPERATORS = Object.create(null);
  var ops = {
    'var': opVar,
    '==': equal,
    '!=': function (a, b) { return !equal(a, b); },
    '>': cmpOp(function (c) { return c > 0; }),
    '>=': cmpOp(function (c) { return c >= 0; }),
    '<': cmpOp(function (c) { return c < 0; }),
    '<=': cmpOp(function (c) { return c <= 0; }),
    'between': function (x, lo, hi) {
      var c1 = compare(lo, x), c2 = compare(x, hi);
      return c1 !== null && c2 !== null && c1 <= 0 && c2 <= 0;
    },
    'and': function (ctx, args) { return args.every(function (a) { return truthy(ctx.ev(a)); }); },
    'or': function (ctx, args) { return args.some(function (a) { return truthy(ctx.ev(a)); }); },
    '!': function (v) { return !truthy(v); },
    'if': opIf,
    'in': opIn,
    'empty': function (v) { v = plain(v); return v === null || ((typeof v === 'string' || Array.isArray(v)) && v.length === 0); },
    '+': arith(function () { var s = 0; for (var i = 0; i < arguments.length; i++) s += arguments[i]; return s; }),
    '-': arith(function (a, b) { return b === undefined ? -a : a - b; }),
    '*': arith(function () { var p = 1; for (var i = 0; i < arguments.length; i++) p *= arguments[i]; return p; }),
    '/': arith(function (a, b) { return b === 0 ? null : a / b; }),
    'min': arith(Math.min),
    'max': arith(Math.max),
    'round': arith(roundHalfAway),
    'abs': arith(Math.abs),
    'concat': function () { return Array.prototype.map.call(arguments, text).join(''); },
    'lower': function (v) { return v === null ? null : text(v).toLowerCase(); },
    'upper': function (v) { return v === null ? null : text(v).toUpperCase(); },
    'length': function (v) {
      if (v === null) return 0;
      if (typeof v === 'string') return Array.from(v).length;
      return Array.isArray(v) ? v.length : null;
    },
    'today': function (ctx) { return ctx.today(); },
    'days_between': daysBetween,
    'add_days': addDays
  };
  Object.keys(ops).forEach(function (k) { OPERATORS[k] = ops[k]; });

  var LAZY = ['var', 'and', 'or', 'if', 'today'];

  /* operator name -> [minimum, maximum] number of arguments; null = any number. */
  var ARITY = Object.create(null);
  var arity = {
    'var': [1, 2], 'between': [3, 3], 'and': [1, null], 'or': [1, null], '!': [1, 1],
    'if': [2, null], 'in': [2, 2], 'empty': [1, 1], '+': [1, null], '-': [1, 2],
    '*': [1, null], '/': [2, 2], 'min': [1, null], 'max': [1, null], 'round': [1, 2],
    'abs': [1, 1], 'concat': [0, null], 'lower': [1, 1], 'upper': [1, 1], 'length': [1, 1],
    'today': [0, 0], 'days_between': [2, 2], 'add_days': [2, 2],
    '==': [2, 2], '!=': [2, 2], '>': [2, 2], '>=': [2, 2], '<': [2, 2], '<=': [2, 2]
  };
  Object.keys(arity).forEach(function (k) { ARITY[k] = arity[k]; });

  // ------------------------------------------------------------ tree walking

  function pointer(path, token) {
    return path + '/' + String(token).replace(/~/g, '~0').replace(/\//g, '~1');
  }

  /* {op, args, pointers} for an operation node, else null. */
  function operation(node) {
    if (!isObject(node)) return null;
    var keys = Object.keys(node);
    if (keys.length !== 1) return null;
    var op = keys[0], raw = node[op];
    if (Array.isArray(raw)) {
      return { op: op, args: raw, pointers: raw.map(function (_, i) { return pointer(pointer('', op), i); }) };
    }
    return { op: op, args: [raw], pointers: [pointer('', op)] };
  }

  function walk(node, path, visit) {
    if (Array.isArray(node)) {
      node.forEach(function (item, i) { walk(item, pointer(path, i), visit); });
      return;
    }
    var o = operation(node);
    if (o === null) return;
    visit(o.op, o.args, path);
    o.args.forEach(function (arg, i) {
      if (!(o.op === 'var' && i === 0)) walk(arg, path + o.pointers[i], visit);
    });
  }

  /* Static check; returns a list of ExpressionError (empty when the expression is fine). */
  function validate(expr, knownFields) {
    var errors = [];
    var known = knownFields ? new Set(knownFields) : null;
    try {
      walk(expr, '', function (op, args, path) {
        if (!(op in OPERATORS)) { errors.push(new ExpressionError('unknown operator ' + JSON.stringify(op), path)); return; }
        var low = ARITY[op][0], high = ARITY[op][1];
        if (args.length < low || (high !== null && args.length > high)) {
          errors.push(new ExpressionError(JSON.stringify(op) + ' takes ' + (low === high ? low : high === null ? 'at least ' + low : low + ' to ' + high) + ' argument(s), got ' + args.length, path));
          return;
        }
        if (op === 'var') {
          var name = args[0];
          if (typeof name !== 'string') errors.push(new ExpressionError('"var" needs a literal field name (string)', path));
          else if (known && name && !known.has(name.split('.')[0])) errors.push(new ExpressionError('unknown field ' + JSON.stringify(name.split('.')[0]), path));
        }
      });
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      errors.push(new ExpressionError('expression is nested too deeply', ''));
    }
    return errors;
  }

  function fieldsUsed(expr) {
    var used = new Set();
    walk(expr, '', function (op, args) {
      if (op === 'var' && typeof args[0] === 'string' && args[0]) used.add(args[0].split('.')[0]);
    });
    return used;
  }

  function todayString(today) {
    if (typeof today === 'string') return today.slice(0, 10);
    var t = today instanceof Date ? today : new Date();
    return pad(t.getFullYear(), 4) + '-' + pad(t.getMonth() + 1, 2) + '-' + pad(t.getDate(), 2);
  }

  /* Evaluate expr against data; today ("YYYY-MM-DD" or Date, default: local today) fixes the clock.
   * The whole tree is validated first; evaluating a valid expression never throws. */
  function evaluate(expr, data, today) {
    var errors = validate(expr);
    if (errors.length) throw errors[0];
    var ctx = {
      data: data === undefined || data === null ? {} : data,
      today: function () { return todayString(today); },
      ev: function (node) {
        if (Array.isArray(node)) return node.map(ctx.ev);
        var o = operation(node);
        if (o === null) return node === undefined ? null : node;
        if (LAZY.indexOf(o.op) !== -1) return OPERATORS[o.op](ctx, o.args);
        return OPERATORS[o.op].apply(null, o.args.map(ctx.ev));
      }
    };
    try {
      return ctx.ev(expr);
    } catch (e) {
      if (e instanceof RangeError) throw new ExpressionError('expression is nested too deeply', '');
      throw e;
    }
  }

  var api = {
    evaluate: evaluate, truthy: truthy, validate: validate, fieldsUsed: fieldsUsed,
    ExpressionError: ExpressionError, OPERATORS: OPERATORS
  };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  if (typeof window !== 'undefined') window.CrmExpr = api;
})();
