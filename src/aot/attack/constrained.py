"""Grammar-constrained decoding of the edit language (``aot.edits.text``).

A barely trained attacker almost never writes a program that parses, so every GRPO rollout
scores -1 and there is nothing to learn from. :class:`EditProgramLogitsProcessor` masks, at
every decoding step, each token that cannot continue a valid program prefix, and allows EOS
only where the text so far is a complete program; with ``max_new_tokens`` given it also
keeps every row finishable within the token budget. Every finished sequence then parses with
:func:`aot.edits.parse_program` (whose default ``max_ops`` it shares).

How it works:

- :class:`EditGrammar` is a character-level automaton built from the op classes in
  ``aot.edits.ops`` (op names, positional kinds, ``key=value`` kinds, ``MIN_KEYS``), with the
  parser's value checks: names from the world vocabulary, integers without leading zeros in
  their range, floats with at most 4 decimals in their range, ``x1 > x0`` and ``y1 > y0`` for
  box ops, no duplicate keys, at most ``max_ops`` lines, one optional trailing newline. A
  prefix is accepted only when some completion of it parses, so decoding never dead-ends.
- States are canonicalised by the language of their completions (``12`` and ``13`` in a
  coordinate field are the same state), so a batch shares few states.
- Per state, a walk of a character trie of the vocabulary gives every allowed token and its
  next state; the row of "tokens still needed to finish" per token (``min_chars`` with
  whole-word costs: a word the vocabulary holds counts one) is cached in a
  ``(n_states, vocab)`` table. A decoding step is then a dict lookup per row, one gather and
  one compare.

``max_id`` / ``max_coord`` (see :func:`scene_bounds`) optionally tighten the parser's id and
coordinate ranges to the scenes at hand: a program naming a missing object parses but fails
to apply, which the attacker's reward scores like a parse failure.
Per-row id sets (``row_ids``, :meth:`EditProgramLogitsProcessor.set_rows`) go further: each
row may name only the ids of its own scene's objects (one grammar per distinct id set). After a
``remove ID`` line the row continues in the grammar of the remaining ids, so later lines do
not name a removed object. Not allowed: an id that an earlier ``add`` of the program creates.

Speed: processor time per decoding step, batch 64, 24 tokens, vocabulary 793, measured on
the 2-core CPU (one thread, niced, beside another job), random logits:

- warm cache (states seen before): 0.4-0.6 ms/step;
- peaked logits (a model with preferences), fresh cache: ~4-7 ms/step on the first batch,
  then ~1 ms/step;
- worst case, near-uniform logits over the allowed tokens (every row in a new state every
  step), fresh cache: 5-16 ms/step with the parser's ranges, 2.5-5 ms/step with scene bounds
  (64 px, ids <= 6).

For scale, the random-init tiny attacker spends ~60 ms per decoding step at batch 64 on the
same CPU (``propose`` of 64 items: 1.5 s with or without the constraint).

During GRPO the rollouts are sampled from the masked (renormalised) distribution while TRL
scores them with the log-probs of the unconstrained policy: the update is slightly
off-policy (nothing corrects for the renormalisation), and it raises the unconstrained
probability of the valid tokens that were sampled, which is the point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from transformers import LogitsProcessor

from ..edits.ops import FLOAT_DECIMALS, MAX_COORD, MAX_OPS, OBJ_ID, OP_TYPES, FloatKind, IntKind, NameKind, Op

_DIGITS = frozenset("0123456789")
_INT_DIGITS = 10
"""Longest integer token the parser accepts (``0|[1-9][0-9]{0,9}``)."""
_FLOAT_INT_DIGITS = 4
"""Longest integer part of a float token (``0|[1-9][0-9]{0,3}``)."""
_ORDERED = (("x0", "x1"), ("y0", "y1"))
"""Box ops' cross check: the second field must exceed the first."""
_INF = 10**9

# state tuples: (OP, n, prefix) | (POS, n, op, j, text, lo, pending) | (KEY, n, op, used, text)
# | (VAL, n, op, used, key, text) | (DONE,); n = complete lines before the current one,
# used = bit mask of keys already given, pending = ((field index, lower bound), ...)
OP, POS, KEY, VAL, DONE = range(5)
DONE_STATE = (DONE,)
_DONE_KEY = (0, DONE_STATE)
"""The processor's key of the finished state (keys are (grammar index, canonical state))."""


# --- value slots -----------------------------------------------------------------------
class _NameSlot:
    def __init__(self, choices: Sequence[str]):
        self.choices = frozenset(choices)
        self.prefixes = frozenset(c[:i] for c in choices for i in range(len(c) + 1))
        self.lo = None

    def ok(self, t: str, lo: Any) -> bool:
        return t in self.prefixes

    def complete(self, t: str, lo: Any) -> bool:
        return t in self.choices

    def canon(self, t: str, lo: Any) -> Any:
        return t

    def min_len(self, lo: Any) -> int:
        return min(map(len, self.choices))

    def finish(self, t: str, lo: Any) -> list[tuple[int, Any]]:
        return [(min(len(c) - len(t) for c in self.choices if c.startswith(t)), None)]


class _IntSlot:
    """Integer in [lo, hi]; ``lo`` may be raised per state (``x1 > x0``)."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def ok(self, t: str, lo: int) -> bool:
        if not t:
            return lo <= self.hi
        if not set(t) <= _DIGITS:
            return False
        if t[0] == "0":
            return len(t) == 1 and lo <= 0
        v = int(t)
        for j in range(0, _INT_DIGITS - len(t) + 1):  # some j-digit extension lands in [lo, hi]
            base = v * 10**j
            if base > self.hi:
                return False
            if base + 10**j - 1 >= lo:
                return True
        return False

    def _intervals(self, t: str, lo: int) -> list[tuple[int, int] | None]:
        """For j more digits: the interval of the j-digit suffix values that land in range."""
        v, out = int(t), []
        for j in range(0, _INT_DIGITS - len(t) + 1 if t != "0" else 1):
            base, width = v * 10**j, 10**j
            if base > self.hi:
                break
            a, b = max(0, lo - base), min(width - 1, self.hi - base)
            out.append((a, b) if a <= b else None)
        while out and out[-1] is None:
            out.pop()
        return out

    def complete(self, t: str, lo: int) -> bool:
        return bool(t) and set(t) <= _DIGITS and (t == "0" or t[0] != "0") and lo <= int(t) <= self.hi

    def canon(self, t: str, lo: int) -> Any:
        return ("E", lo) if not t else tuple(self._intervals(t, lo))

    def min_len(self, lo: int) -> int:
        return len(str(lo))

    def finish(self, t: str, lo: int) -> list[tuple[int, int]]:
        """(extra digits, smallest value) for every length the number can still end at."""
        if not t:
            return [(len(str(lo)), lo)]
        v = int(t)
        return [(j, v * 10**j + iv[0]) for j, iv in enumerate(self._intervals(t, lo)) if iv is not None]

    def value(self, t: str) -> int:
        return int(t)


class _FloatSlot:
    """``(0|[1-9][0-9]{0,3})(\\.[0-9]{1,4})?`` in [lo, hi]; exact integer arithmetic in 1e-4 units."""

    U = 10**FLOAT_DECIMALS

    def __init__(self, lo: float, hi: float):
        self.lo_u, self.hi_u = round(lo * self.U), round(hi * self.U)
        if self.lo_u / self.U != lo or self.hi_u / self.U != hi:
            raise ValueError(f"float bounds {lo}, {hi} are not multiples of 1e-{FLOAT_DECIMALS}")
        self.lo = None
        self._finish: dict[str, int] = {}

    def _split(self, t: str) -> tuple[str, bool, str] | None:
        ip, dot, dp = t.partition(".")
        if not ip or not set(ip) <= _DIGITS or (ip[0] == "0" and len(ip) > 1) or len(ip) > _FLOAT_INT_DIGITS:
            return None
        if dot and (len(dp) > FLOAT_DECIMALS or not set(dp) <= _DIGITS):
            return None
        return ip, bool(dot), dp

    def ok(self, t: str, lo: Any = None) -> bool:
        if not t:
            return self.lo_u <= self.hi_u
        parts = self._split(t)
        if parts is None:
            return False
        ip, dot, dp = parts
        whole = int(ip)
        if dot:
            k = len(dp)
            base = whole * self.U + (int(dp) if dp else 0) * 10 ** (FLOAT_DECIMALS - k)
            return base <= self.hi_u and base + 10 ** (FLOAT_DECIMALS - k) - 1 >= self.lo_u
        for j in range(0, 1 if ip == "0" else _FLOAT_INT_DIGITS - len(ip) + 1):
            b = whole * 10**j
            if b * self.U > self.hi_u:
                return False
            if (b + 10**j) * self.U - 1 >= self.lo_u:
                return True
        return False

    def _value_u(self, t: str) -> int | None:
        parts = self._split(t)
        if parts is None or (parts[1] and not parts[2]):
            return None
        ip, _, dp = parts
        return int(ip) * self.U + (int(dp) * 10 ** (FLOAT_DECIMALS - len(dp)) if dp else 0)

    def complete(self, t: str, lo: Any = None) -> bool:
        v = self._value_u(t)
        return v is not None and self.lo_u <= v <= self.hi_u

    def canon(self, t: str, lo: Any = None) -> Any:
        ip, dot, dp = t.partition(".")
        if not dot:
            return ("I", t)
        k = len(dp)
        width = 10 ** (FLOAT_DECIMALS - k)
        base = int(ip) * self.U + (int(dp) if dp else 0) * width
        return ("D", k, max(self.lo_u - base, 0), min(self.hi_u - base, width - 1), k == 0)

    def min_len(self, lo: Any = None) -> int:
        return self.finish("")[0][0]

    def finish(self, t: str, lo: Any = None) -> list[tuple[int, None]]:
        """Fewest extra characters to a complete float (breadth-first; always 3 or fewer here)."""
        if t not in self._finish:
            frontier, depth = [t], 0
            while not any(self.complete(s) for s in frontier):
                frontier = [s + c for s in frontier for c in "0123456789." if self.ok(s + c)]
                depth += 1
                if not frontier:
                    raise ValueError(f"float prefix {t!r} cannot be completed")
            self._finish[t] = depth
        return [(self._finish[t], None)]


def _slot(kind: Any, hi: int | None = None):
    if isinstance(kind, NameKind):
        return _NameSlot(kind.choices)
    if isinstance(kind, IntKind):
        return _IntSlot(kind.lo, kind.hi if hi is None else hi)
    if isinstance(kind, FloatKind):
        return _FloatSlot(kind.lo, kind.hi)
    raise TypeError(f"no grammar for value kind {type(kind).__name__}")


@dataclass(frozen=True)
class _Field:
    name: str
    slot: Any
    lo: Any
    feeds: int | None
    """Index of a later field that must exceed this one (``x0`` feeds ``x1``)."""


@dataclass(frozen=True)
class _OpGrammar:
    name: str
    fields: tuple[_Field, ...]
    key_names: tuple[str, ...]
    key_slots: tuple[Any, ...]
    min_keys: int
    has_keys: bool

    @property
    def all_keys(self) -> int:
        return (1 << len(self.key_names)) - 1


def _compile(cls: type[Op], max_id: int | None = None, max_coord: int | None = None, ids: frozenset[int] | None = None) -> _OpGrammar | None:
    """``ids``: the object ids allowed (an id field then takes exactly these); None when an op
    needs an id and none is allowed."""
    names = [f for f, _ in cls.POS]
    feeds: dict[int, int] = {}
    if cls.cross_check.__func__ is not Op.cross_check.__func__:  # type: ignore[attr-defined]
        if not all(a in names and b in names for a, b in _ORDERED):
            raise NotImplementedError(f"op {cls.name!r} has a cross check the constrained grammar does not know")
        feeds = {names.index(a): names.index(b) for a, b in _ORDERED}

    def top(kind: Any) -> int | None:
        if kind is OBJ_ID and max_id is not None:
            return min(kind.hi, max_id)
        if isinstance(kind, IntKind) and kind.lo == 0 and kind.hi == MAX_COORD and max_coord is not None:
            return min(kind.hi, max_coord)
        return getattr(kind, "hi", None)

    fields = []
    for j, (fname, kind) in enumerate(cls.POS):
        if kind is OBJ_ID and ids is not None:
            choices = [str(v) for v in sorted(ids) if kind.lo <= v <= kind.hi]
            if not choices:
                return None
            fields.append(_Field(fname, _NameSlot(choices), None, None))
            continue
        hi = top(kind)
        if j in feeds:  # leave room for the field that must exceed this one
            hi = min(hi, top(cls.POS[feeds[j]][1]) - 1)
        slot = _slot(kind, hi)
        fields.append(_Field(fname, slot, slot.lo, feeds.get(j)))
    keys = cls.KEYS or {}
    return _OpGrammar(cls.name, tuple(fields), tuple(keys), tuple(_slot(k) for k in keys.values()), cls.MIN_KEYS, cls.KEYS is not None)


# --- the automaton ---------------------------------------------------------------------
class EditGrammar:
    """Character automaton of the edit language: ``step(state, ch)`` gives the next state or
    None, ``can_end(state)`` says whether the text so far parses, ``min_chars(state)`` how
    many characters at least it takes to get there, ``canon(state)`` a hashable key equal for
    states with the same completions."""

    def __init__(
        self, max_ops: int = MAX_OPS, max_id: int | None = None, max_coord: int | None = None, op_types: Iterable[type[Op]] = OP_TYPES,
        ids: Iterable[int] | None = None, word_cost: Callable[[str], int] | None = None,
    ):
        """``ids``: the exact set of object ids an id field may name (e.g. the ids of one
        scene's objects; overrides ``max_id``); ops that need an id are left out when it is empty.

        ``word_cost(w)``: the tokens it takes to write the whole word ``w`` (an op name, a name
        value or a number, with or without its leading space), at most ``len(w)``; the default
        ``len`` counts characters. :meth:`min_chars` then counts a word written in one go at
        this cost and a partly written one by its characters left (see there)."""
        if max_ops < 1:
            raise ValueError(f"max_ops must be >= 1, got {max_ops}")
        if (max_id is not None and max_id < 0) or (max_coord is not None and max_coord < 1):
            raise ValueError(f"need max_id >= 0 and max_coord >= 1, got {max_id}, {max_coord}")
        self.max_ops, self.max_id, self.max_coord = max_ops, max_id, max_coord
        self.ids = None if ids is None else frozenset(int(v) for v in ids)
        self.word_cost = word_cost or len
        self._fresh_cache: dict[tuple, int] = {}
        self.ops = tuple(g for c in op_types if (g := _compile(c, max_id, max_coord, self.ids)) is not None)
        if not self.ops:
            raise ValueError("no op of the edit language fits these bounds")
        self.op_index = {g.name: i for i, g in enumerate(self.ops)}
        self.op_prefixes = frozenset(g.name[:i] for g in self.ops for i in range(1, len(g.name) + 1))
        self.start = (OP, 0, "")
        self._min: dict[Any, int] = {}
        chars = set(" \n=.0123456789")
        for g in self.ops:
            chars.update(g.name, *g.key_names)
            for s in [f.slot for f in g.fields] + list(g.key_slots):
                for c in getattr(s, "choices", ()):
                    chars.update(c)
        self.alphabet = frozenset(chars)

    def step(self, s: tuple, ch: str) -> tuple | None:
        ph = s[0]
        if ph == OP:
            _, n, p = s
            if ch == " " or ch == "\n":
                i = self.op_index.get(p)
                if i is None:
                    return None
                g = self.ops[i]
                if ch == "\n":
                    return (OP, n + 1, "") if not g.fields and g.min_keys == 0 else None
                if g.fields:
                    return (POS, n, i, 0, "", g.fields[0].lo, ())
                return (KEY, n, i, 0, "") if g.has_keys else None
            if n >= self.max_ops:
                return None
            p = p + ch
            return (OP, n, p) if p in self.op_prefixes else None
        if ph == POS:
            _, n, i, j, t, lo, pend = s
            g = self.ops[i]
            f = g.fields[j]
            if ch == " " or ch == "\n":
                if not f.slot.complete(t, lo):
                    return None
                if f.feeds is not None:
                    pend = pend + ((f.feeds, f.slot.value(t) + 1),)
                last = j + 1 == len(g.fields)
                if ch == "\n":
                    return (OP, n + 1, "") if last and g.min_keys == 0 else None
                if not last:
                    nf = g.fields[j + 1]
                    lo2 = nf.lo
                    for k, b in pend:
                        if k == j + 1:
                            lo2 = max(lo2, b)
                    return (POS, n, i, j + 1, "", lo2, tuple(p for p in pend if p[0] != j + 1))
                return (KEY, n, i, 0, "") if g.has_keys else None
            t = t + ch
            return (POS, n, i, j, t, lo, pend) if f.slot.ok(t, lo) else None
        if ph == KEY:
            _, n, i, used, t = s
            g = self.ops[i]
            if ch == "=":
                if t in g.key_names:
                    k = g.key_names.index(t)
                    if not used >> k & 1:
                        return (VAL, n, i, used, k, "")
                return None
            t = t + ch
            if any(not used >> k & 1 and name.startswith(t) for k, name in enumerate(g.key_names)):
                return (KEY, n, i, used, t)
            return None
        if ph == VAL:
            _, n, i, used, k, t = s
            g = self.ops[i]
            slot = g.key_slots[k]
            if ch == " " or ch == "\n":
                if not slot.complete(t, slot.lo):
                    return None
                used = used | 1 << k
                if ch == " ":
                    return (KEY, n, i, used, "") if used != g.all_keys else None
                return (OP, n + 1, "") if bin(used).count("1") >= g.min_keys else None
            t = t + ch
            return (VAL, n, i, used, k, t) if slot.ok(t, slot.lo) else None
        return None

    def can_end(self, s: tuple) -> bool:
        ph = s[0]
        if ph == OP:
            _, n, p = s
            if p == "":
                return n >= 1
            i = self.op_index.get(p)
            return i is not None and not self.ops[i].fields and self.ops[i].min_keys == 0
        if ph == POS:
            _, n, i, j, t, lo, _ = s
            g = self.ops[i]
            return j + 1 == len(g.fields) and g.min_keys == 0 and g.fields[j].slot.complete(t, lo)
        if ph == VAL:
            _, n, i, used, k, t = s
            g = self.ops[i]
            return g.key_slots[k].complete(t, g.key_slots[k].lo) and bin(used | 1 << k).count("1") >= g.min_keys
        return False

    def canon(self, s: tuple) -> Any:
        ph = s[0]
        if ph == POS:
            _, n, i, j, t, lo, pend = s
            f = self.ops[i].fields[j]
            if f.feeds is None:  # its value matters later only through its completions
                return (POS, n, i, j, f.slot.canon(t, lo), pend)
        elif ph == VAL:
            _, n, i, used, k, t = s
            return (VAL, n, i, used, k, self.ops[i].key_slots[k].canon(t, self.ops[i].key_slots[k].lo))
        return s

    # fewest characters (with word_cost: tokens) to a state where the text parses
    def min_chars(self, s: tuple, key: Any = None) -> int:
        """Cost of the cheapest finish of ``s`` that this counts: words started afresh cost
        ``word_cost`` (one token when the vocabulary has the word), partly written words and
        key=value pairs one per character. With the default ``len`` it is the exact fewest
        characters. Either way it is the length of a real finish made of single characters and
        whole-word tokens, and taking that finish's first step lowers it by one: so when it
        fits the budget some allowed token keeps it fitting, and the token-budget rule never
        dead-ends (``tests/test_constrained.py`` walks both)."""
        if key is None:
            key = self.canon(s)
        m = self._min.get(key)
        if m is None:
            m = self._min[key] = self._min_chars(s)
        return m

    def _min_chars(self, s: tuple) -> int:
        if s[0] == DONE or self.can_end(s):
            return 0
        ph = s[0]
        if ph == OP:
            _, n, p = s
            return min(((self.word_cost(g.name) if not p else len(g.name) - len(p)) + self._rest(g, 0, ()) for g in self.ops if g.name.startswith(p)), default=_INF)
        if ph == POS:
            _, n, i, j, t, lo, pend = s
            g = self.ops[i]
            f = g.fields[j]
            best = _INF
            for extra, v in f.slot.finish(t, lo):
                p2 = pend + ((f.feeds, v + 1),) if f.feeds is not None else pend
                if not t:  # a fresh word: one token when the vocabulary has it
                    extra = self._fresh(f.slot, lo, space=False, free=f.feeds is None)
                best = min(best, extra + self._rest(g, j + 1, p2))
            return best
        if ph == KEY:
            _, n, i, used, t = s
            g = self.ops[i]
            return min(
                (len(name) - len(t) + 1 + g.key_slots[k].min_len(g.key_slots[k].lo) + self._more_keys(g, used | 1 << k)
                 for k, name in enumerate(g.key_names) if not used >> k & 1 and name.startswith(t)),
                default=_INF,
            )
        _, n, i, used, k, t = s
        g = self.ops[i]
        slot = g.key_slots[k]
        return min(e for e, _ in slot.finish(t, slot.lo)) + self._more_keys(g, used | 1 << k)

    def _rest(self, g: _OpGrammar, j: int, pend: tuple) -> int:
        """Fewest characters for fields j.. (each after a space) and the required keys."""
        bounds = dict(pend)
        total = 0
        for m in range(j, len(g.fields)):
            f = g.fields[m]
            lo = f.lo if m not in bounds else max(f.lo, bounds[m])
            total += self._fresh(f.slot, lo, space=True, free=f.feeds is None)
            if f.feeds is not None:
                bounds[f.feeds] = lo + 1  # the smallest value also gives the shortest follower
        return total + self._more_keys(g, 0)

    def _fresh(self, slot: Any, lo: Any, space: bool, free: bool = True) -> int:
        """Cost of writing a whole value of ``slot`` (after a space when ``space``): its
        cheapest choice for names; for integers the cheapest of the first 100 values when the
        value is ``free`` (no later field's bound depends on it), else the smallest value
        (what ``_rest`` assumes for the follower); characters for floats."""
        key = (id(slot), lo, space, free)
        c = self._fresh_cache.get(key)
        if c is not None:
            return c
        wc = self.word_cost
        if isinstance(slot, _NameSlot):
            words: Iterable[str] = slot.choices
        elif isinstance(slot, _IntSlot):
            words = [str(v) for v in range(lo, min(slot.hi, lo + 99) + 1)] if free else [str(lo)]
        else:
            return space + slot.min_len(lo)
        c = self._fresh_cache[key] = min((min(wc(" " + w), 1 + wc(w)) if space else wc(w) for w in words), default=_INF)
        return c

    def _more_keys(self, g: _OpGrammar, used: int) -> int:
        need = g.min_keys - bin(used).count("1")
        if need <= 0:
            return 0
        costs = sorted(2 + len(name) + g.key_slots[k].min_len(g.key_slots[k].lo) for k, name in enumerate(g.key_names) if not used >> k & 1)
        return sum(costs[:need])

    def accepts(self, text: str) -> bool:
        """Whether ``text`` is a complete program of this grammar (for tests)."""
        s: tuple | None = self.start
        for ch in text:
            s = self.step(s, ch)
            if s is None:
                return False
        return self.can_end(s)


def scene_bounds(scenes: Iterable[Any], max_ops: int = MAX_OPS) -> dict[str, int]:
    """``max_id`` / ``max_coord`` for programs on these scenes: the largest id an object can
    have (existing ones, or one added earlier in the program) and the largest canvas side.

    Outside them a program still parses, but a missing id fails to apply (scored like a
    parse failure) and a coordinate past the canvas edits nothing visible or is rejected by
    the integrity check."""
    scenes = list(scenes)
    if not scenes:
        raise ValueError("scene_bounds needs at least one scene")
    return {
        "max_id": max(0, max(sc.next_id() for sc in scenes) - 1 + (max_ops - 1)),
        "max_coord": max(max(sc.width, sc.height) for sc in scenes),
    }


# --- the logits processor --------------------------------------------------------------
def token_strings(tokenizer: Any) -> list[str | None]:
    """The text each token id adds when decoded, None for special and added tokens."""
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    out: list[str | None] = []
    for i in range(len(tokenizer)):
        out.append(None if i in special else tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False))
    return out


class _Trie:
    def __init__(self, strings: Sequence[str | None], alphabet: frozenset[str]):
        self.children: list[dict[str, int]] = [{}]
        self.tokens: list[list[int]] = [[]]
        for tid, s in enumerate(strings):
            if not s or not set(s) <= alphabet:
                continue
            node = 0
            for ch in s:
                nxt = self.children[node].get(ch)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][ch] = nxt
                    self.children.append({})
                    self.tokens.append([])
                node = nxt
            self.tokens[node].append(tid)


class _Entry:
    __slots__ = ("index", "next")

    def __init__(self, index: int, nxt: dict[int, Any]):
        self.index, self.next = index, nxt


class EditProgramLogitsProcessor(LogitsProcessor):
    """Masks tokens that cannot continue a valid edit program (see the module docstring).

    ``max_new_tokens``: the generation budget; given, a token is allowed only if the program
    can still be finished within the tokens left (using one-character tokens, which a
    byte-level vocabulary always has, and whole-word tokens such as `` small`` or `` 42``
    where the vocabulary has them), so even a truncated row parses. ``max_id`` and
    ``max_coord`` tighten the parser's object-id and coordinate ranges (see
    :func:`scene_bounds`); None keeps the parser's. The processor keeps
    per-row state between calls and notices a new ``generate`` call by itself (a batch that
    does not extend the previous one by one token); ``reset()`` forces it.

    ``row_ids`` (or :meth:`set_rows`): per prompt, the exact object ids its programs may name
    (e.g. ``[o.id for o in scene.objects]``), with ``num_return_sequences`` k rows per prompt:
    generated row r belongs to prompt r // k (the layout of ``transformers``'
    ``num_return_sequences`` and of ``Defender.generate``'s shared prefill). Successive
    ``generate`` calls after a reset take the following prompts in order, so one list covers
    ``Defender.generate``'s chunks of ``batch_size`` prompts. Rows past the list are an error.
    """

    MAX_STATES = 20_000
    """Cached states before the cache is cleared (at the start of a generate call)."""

    def __init__(
        self, tokenizer: Any, max_ops: int = MAX_OPS, max_new_tokens: int | None = None, eos_token_ids: Sequence[int] | int | None = None,
        max_id: int | None = None, max_coord: int | None = None, row_ids: Sequence[Iterable[int]] | None = None, num_return_sequences: int = 1,
    ):
        strings = token_strings(tokenizer)
        whole = frozenset(t for t in strings if t)
        # a word the vocabulary holds costs one token, so "add small red matte ring 0 0" (28
        # characters) counts 7 against the budget, not 28 (counting characters kept ``add``
        # out of every 24-token program)
        self._word_cost = lambda w: 1 if w in whole else len(w)
        self.grammar = EditGrammar(max_ops, max_id=max_id, max_coord=max_coord, word_cost=self._word_cost)
        self.grammars: list[EditGrammar] = [self.grammar]  # index 0: the shared bounds; then one per id set
        self._grammar_index: dict[frozenset[int], int] = {}
        self.max_new_tokens = max_new_tokens
        eos = tokenizer.eos_token_id if eos_token_ids is None else eos_token_ids
        self.eos_ids = [eos] if isinstance(eos, int) else list(eos)
        if not self.eos_ids:
            raise ValueError("the constrained decoder needs an EOS token id")
        pad = tokenizer.pad_token_id
        self.done_ids = sorted(set(self.eos_ids) | ({pad} if pad is not None else set()))
        self.vocab = len(tokenizer)
        missing = sorted(c for c in self.grammar.alphabet if c not in strings)
        if missing:
            raise ValueError(f"the tokenizer has no single-character token for {missing}; the constrained decoder needs one per grammar character")
        self.trie = _Trie(strings, self.grammar.alphabet)
        self._clear()
        self._row_gi: list[int] | None = None
        self._k = 1
        self.set_rows(row_ids, num_return_sequences)

    MAX_GRAMMARS = 256
    """Distinct per-row id sets kept before the grammars and the state cache are dropped."""

    def set_rows(self, row_ids: Sequence[Iterable[int]] | None, num_return_sequences: int = 1) -> None:
        """Per-prompt id sets (see the class docstring; None: every row uses the shared bounds),
        then ``reset()``."""
        if num_return_sequences < 1:
            raise ValueError(f"num_return_sequences must be >= 1, got {num_return_sequences}")
        self._k = num_return_sequences
        if row_ids is None:
            self._row_gi = None
        else:
            sets = [frozenset(int(v) for v in ids) for ids in row_ids]
            if len(self._grammar_index) + len(set(sets)) > self.MAX_GRAMMARS:
                self.grammars, self._grammar_index = [self.grammar], {}
                self._clear()
            g0 = self.grammar
            self._row_gi = [self._grammar_for(ids) for ids in sets]
        self.reset()

    def _grammar_for(self, ids: frozenset[int]) -> int:
        gi = self._grammar_index.get(ids)
        if gi is None:
            gi = self._grammar_index[ids] = len(self.grammars)
            self.grammars.append(EditGrammar(self.grammar.max_ops, max_coord=self.grammar.max_coord, ids=ids, word_cost=self._word_cost))
        return gi

    def _after_remove(self, gi: int, st: tuple, ch: str) -> int:
        """The grammar a row continues in after ``ch`` from ``st``: with per-row id sets, a
        finished ``remove ID`` line takes ID out of the ids later lines may name."""
        g = self.grammars[gi]
        if g.ids is None or ch != "\n" or st[0] != POS or g.ops[st[2]].name != "remove":
            return gi
        return self._grammar_for(g.ids - {int(st[4])})

    def _clear(self) -> None:
        self._entries: dict[Any, _Entry] = {}
        self._reps: dict[Any, tuple] = {}
        self._need = torch.empty((64, self.vocab), dtype=torch.int16)  # (capacity, vocab) on CPU
        self._n = 0
        self._dev: torch.Tensor | None = None  # copy on the logits' device, first _dev_n rows synced
        self._dev_n = 0
        for g in getattr(self, "grammars", [self.grammar]):
            g._min.clear()

    def reset(self) -> None:
        """Forget the rows of the current generation (the state cache is kept)."""
        self._prev: torch.Tensor | None = None
        self._keys: list[Any] = []
        self._start = 0
        self._row0 = 0  # first prompt of the next generate call (per-row id sets)

    # one (vocab,) row of "tokens still needed after this token" per state; BIG = not allowed
    BIG = 2**15 - 1

    # state keys are (grammar index, canonical state)
    def _entry(self, key: Any) -> _Entry:
        e = self._entries.get(key)
        if e is not None:
            return e
        s = self._reps[key]
        gi = key[0]
        g = self.grammars[gi]
        need = [self.BIG] * self.vocab
        nxt: dict[int, Any] = {}
        if s[0] == DONE:
            for tid in self.done_ids:
                need[tid] = 0
        else:
            stack = [(0, s, gi)]
            children, tokens = self.trie.children, self.trie.tokens
            while stack:
                node, st, gc = stack.pop()
                gr = self.grammars[gc]
                for ch, child in children[node].items():
                    s2 = gr.step(st, ch)
                    if s2 is None:
                        continue
                    g2 = self._after_remove(gc, st, ch)  # s2 is then (OP, n, ""), the same state in any grammar
                    gr2 = self.grammars[g2]
                    if tokens[child]:
                        c2 = gr2.canon(s2)
                        k2 = (g2, c2)
                        self._reps.setdefault(k2, s2)
                        m = min(gr2.min_chars(s2, c2), self.BIG - 1)
                        for tid in tokens[child]:
                            nxt[tid] = k2
                            need[tid] = m
                    if children[child]:
                        stack.append((child, s2, g2))
            if g.can_end(s):
                for tid in self.eos_ids:
                    need[tid] = 0
            if not nxt and not g.can_end(s):  # cannot happen for a viable state; fail loudly
                raise RuntimeError(f"constrained decoder reached a dead state {s!r}")
        if self._n == self._need.shape[0]:
            self._need = torch.cat([self._need, torch.empty_like(self._need)])
        self._need[self._n] = torch.tensor(need, dtype=torch.int16)
        e = _Entry(self._n, nxt)
        self._n += 1
        self._entries[key] = e
        return e

    def _gather(self, idx: list[int], device: torch.device) -> torch.Tensor:
        """Rows ``idx`` of the need table, on ``device``: (len(idx), vocab)."""
        if device.type == "cpu":
            return self._need[torch.tensor(idx)]
        if self._dev is None or self._dev.device != device or self._dev.shape[0] < self._n:
            self._dev = torch.empty((self._need.shape[0], self.vocab), dtype=torch.int16, device=device)
            self._dev_n = 0
        if self._dev_n < self._n:
            self._dev[self._dev_n : self._n] = self._need[self._dev_n : self._n].to(device)
            self._dev_n = self._n
        return self._dev[torch.tensor(idx, device=device)]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        B, L = input_ids.shape
        prev = self._prev
        if prev is not None and prev.shape[0] == B and prev.shape[1] + 1 == L and torch.equal(prev, input_ids[:, :-1]):
            keys = self._keys
            for b, tok in enumerate(input_ids[:, -1].tolist()):
                # None: EOS, padding after EOS, or a token forced past the mask; the row is over
                keys[b] = self._entries[keys[b]].next.get(tok, _DONE_KEY)
        else:  # a new generate call: the prompt ends here
            if len(self._entries) > self.MAX_STATES:
                self._clear()
            self._start = L
            self._reps.setdefault(_DONE_KEY, DONE_STATE)
            if self._row_gi is None:
                gis = [0] * B
            else:
                k, r0 = self._k, self._row0
                if B % k or r0 + B // k > len(self._row_gi):
                    raise ValueError(
                        f"constrained decoder: per-row id sets for {len(self._row_gi)} prompts x {k} samples, but this generate call "
                        f"has {B} rows after {r0} prompts (reset() or set_rows() before a new batch)"
                    )
                gis = [gi for gi in self._row_gi[r0 : r0 + B // k] for _ in range(k)]
                self._row0 = r0 + B // k
            starts = {}
            for gi in set(gis):
                g = self.grammars[gi]
                starts[gi] = (gi, g.canon(g.start))
                self._reps.setdefault(starts[gi], g.start)
            self._keys = [starts[gi] for gi in gis]
        self._prev = input_ids
        idx = [self._entry(k).index for k in self._keys]
        need = self._gather(idx, scores.device)  # (B, vocab)
        left = self.BIG - 1 if self.max_new_tokens is None else self.max_new_tokens - (L - self._start) - 1
        allowed = need <= max(left, 0)
        stuck = ~allowed.any(dim=1)
        if bool(stuck.any()):  # budget too small to finish: keep the tokens that get closest
            allowed |= stuck.unsqueeze(1) & (need == need.min(dim=1, keepdim=True).values) & (need < self.BIG)
        if scores.shape[1] != self.vocab:  # logits padded past the tokenizer: never allowed
            full = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
            n = min(self.vocab, scores.shape[1])
            full[:, :n] = allowed[:, :n]
            allowed = full
        return scores.masked_fill(~allowed, float("-inf"))
