r"""Diagrams of the book's cells, drawn as inline SVG from the reference code itself.

The book shows an unrolled RNN, the LSTM cell built up gate by gate, the GRU cell and a
recurrence-versus-attention dependency picture. Each is a function here that returns a
:class:`Diagram`: the SVG markup and an alt text saying what the picture shows. The gate names,
their order in the stacked weights, each gate's squashing function and where the GRU's reset gate
acts are not typed in by hand: :func:`lstm_structure` and :func:`gru_structure` read them from the
source of :func:`course_lib.reference.lstm_gates` and :func:`course_lib.reference.gru_cell`, so a
picture cannot disagree with the code it illustrates.

Colours: strokes and text use ``currentColor``, so an SVG placed inline in a page takes the
theme's text colour (dark on the light theme, light on the dark one); gates are filled with
translucent accent colours that read on either background.

Symbols (as in the book): ``x_t`` input, ``h_t`` hidden state, ``c_t`` LSTM cell state,
``i_t, f_t, g_t, o_t`` LSTM gates and candidate, ``r_t, z_t, n_t`` GRU reset gate, update gate and
candidate, ``W_ih``, ``W_hh`` input and recurrent weights.
"""
from __future__ import annotations

import html
import inspect
import re
from dataclasses import dataclass

from course_lib import reference

__all__ = ["Diagram", "CellStructure", "lstm_structure", "gru_structure", "unrolled_rnn",
           "lstm_cell", "LSTM_STAGES", "gru_cell", "dependency_paths"]

#: Fill colours by squashing function (translucent, so they work on light and dark pages).
FILL = {"sigmoid": "#e8912d", "tanh": "#3b82c4", "op": "#8a8a8a", "new": "#2e9d5b"}
BACKWARD = "#d0453b"           # the BPTT path
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"


@dataclass(frozen=True)
class Diagram:
    """An SVG picture and the alt text that says what it shows."""

    svg: str
    alt: str

    def _repr_html_(self) -> str:          # Jupyter and MyST-NB show it inline, as HTML
        return f"<figure class='course-diagram' style='margin:0'>{self.svg}</figure>"


@dataclass(frozen=True)
class CellStructure:
    """What the reference code of one cell computes, as a diagram needs it.

    ``order``: the gate blocks in the order they are stacked in ``w_ih`` and ``w_hh`` rows.
    ``activation``: each block's squashing function, ``"sigmoid"`` or ``"tanh"``.
    ``reset``: GRU only, ``"after"`` (``r ⊙ (W_hn h + b_hn)``) or ``"before"`` (``W_hn (r ⊙ h)``).
    """

    order: tuple[str, ...]
    activation: dict
    reset: str | None = None


def _blocks(source: str, prefix: str) -> tuple[str, ...]:
    match = re.search(rf"((?:{prefix}\w,\s*)+{prefix}\w)\s*=\s*_blocks\(", source)
    if not match:
        raise ValueError(f"cannot find the '{prefix}... = _blocks(...)' line in the reference source")
    return tuple(name.strip()[len(prefix):] for name in match.group(1).split(","))


def _activations(source: str, gates: tuple[str, ...]) -> dict:
    out = {}
    for gate in gates:
        match = re.search(rf"^\s*{gate}_t\s*=\s*torch\.(sigmoid|tanh)\(", source, re.M)
        if not match:
            raise ValueError(f"cannot find the line '{gate}_t = torch.sigmoid/tanh(...)' in the reference source")
        out[gate] = match.group(1)
    return out


def lstm_structure() -> CellStructure:
    """Gate order and squashing functions of :func:`course_lib.reference.lstm_gates`."""
    source = inspect.getsource(reference.lstm_gates)
    order = _blocks(source, "W_i")
    return CellStructure(order, _activations(source, order))


def gru_structure() -> CellStructure:
    """Gate order, squashing functions and reset placement of :func:`course_lib.reference.gru_cell`."""
    source = inspect.getsource(reference.gru_cell)
    order = _blocks(source, "W_i")
    candidate = re.search(r"^\s*n_t\s*=.*$", source, re.M).group(0)
    if re.search(r"r_t\s*\*\s*affine\(h_tm1", candidate):
        reset = "after"
    elif re.search(r"affine\(r_t\s*\*\s*h_tm1", candidate):
        reset = "before"
    else:
        raise ValueError(f"cannot tell where the reset gate acts in: {candidate.strip()}")
    return CellStructure(order, _activations(source, order), reset)


# ----------------------------------------------------------------------------------------- drawing
def _label(symbol: str) -> str:
    """``"h_{t-1}"`` -> SVG tspans: an italic base and a lowered, smaller subscript."""
    match = re.fullmatch(r"([^_]+)(?:_\{?([^}]*)\}?)?", symbol)
    base, sub = match.group(1), match.group(2)
    style = "" if base in {"W", "σ", "tanh", "ℒ", "δ"} or len(base) > 1 else " font-style='italic'"
    out = f"<tspan{style}>{html.escape(base)}</tspan>"
    if sub:
        out += (f"<tspan dy='0.35em' font-size='0.72em'>{html.escape(sub.replace('-', '−'))}</tspan>"
                f"<tspan dy='-0.35em'>\u200b</tspan>")
    return out


def _text(x: float, y: float, content: str, *, size: int = 15, anchor: str = "middle",
          weight: str = "normal", color: str = "currentColor") -> str:
    return (f"<text x='{x}' y='{y}' font-size='{size}' text-anchor='{anchor}' dominant-baseline='central' "
            f"font-weight='{weight}' fill='{color}'>{content}</text>")


def _sym(x: float, y: float, symbol: str, **kw) -> str:
    return _text(x, y, _label(symbol), **kw)


def _line(points, *, color: str = "currentColor", width: float = 2, arrow: bool = True,
          dash: str | None = None, marker: str = "arrow") -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(points))
    extra = f" stroke-dasharray='{dash}'" if dash else ""
    end = f" marker-end='url(#{marker})'" if arrow else ""
    return f"<path d='{d}' fill='none' stroke='{color}' stroke-width='{width}'{extra}{end}/>"


def _box(x: float, y: float, w: float, h: float, fill: str, content: str, *, size: int = 15,
         highlight: bool = False) -> str:
    stroke = FILL["new"] if highlight else "currentColor"
    sw = 3 if highlight else 1.5
    return (f"<rect x='{x - w / 2}' y='{y - h / 2}' width='{w}' height='{h}' rx='7' fill='{fill}' "
            f"fill-opacity='0.28' stroke='{stroke}' stroke-width='{sw}'/>" + _text(x, y, content, size=size))


def _node(x: float, y: float, op: str, *, highlight: bool = False, size: int = 17) -> str:
    stroke = FILL["new"] if highlight else "currentColor"
    sw = 3 if highlight else 1.5
    return (f"<circle cx='{x}' cy='{y}' r='13' fill='{FILL['op']}' fill-opacity='0.2' stroke='{stroke}' "
            f"stroke-width='{sw}'/>" + _text(x, y, op, size=size))


def _svg(width: int, height: int, body: list[str], alt: str) -> str:
    defs = ("<defs>"
            "<marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerUnits='userSpaceOnUse' markerWidth='11' markerHeight='11' "
            "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='currentColor'/></marker>"
            f"<marker id='arrow-back' viewBox='0 0 10 10' refX='9' refY='5' markerUnits='userSpaceOnUse' markerWidth='11' markerHeight='11' "
            f"orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='{BACKWARD}'/></marker>"
            "</defs>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' role='img' "
            f"aria-label='{html.escape(alt, quote=True)}' style='max-width:{width}px;width:100%;height:auto' "
            f"{FONT}><title>{html.escape(alt)}</title>{defs}{''.join(body)}</svg>")


# ------------------------------------------------------------------------------------ the diagrams
def unrolled_rnn(steps: int = 4) -> Diagram:
    """An RNN unrolled over ``steps`` copies sharing W_ih and W_hh, with the BPTT path drawn back."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2 to show a recurrence, got {steps}")
    gap, left = 150, 90
    width = left + gap * steps + 40
    body = []
    xs = [left + gap * k for k in range(steps)]
    names = [str(k + 1) for k in range(steps - 1)] + ["L"]
    y_cell, y_in, y_back = 150, 250, 60
    body.append(_sym(left - 70, y_cell, "h_0", size=16))
    body.append(_line([(left - 55, y_cell), (xs[0] - 40, y_cell)]))
    for k, (x, name) in enumerate(zip(xs, names)):
        body.append(_box(x, y_cell, 80, 50, FILL["tanh"], "tanh", size=15))
        body.append(_sym(x, y_in + 18, f"x_{name}", size=16))
        body.append(_line([(x, y_in), (x, y_cell + 26)]))
        body.append(_sym(x + 24, (y_in + y_cell) / 2 + 8, "W_ih", size=13, anchor="start"))
        if k + 1 < steps:
            nxt = xs[k + 1]
            body.append(_line([(x + 40, y_cell), (nxt - 40, y_cell)]))
            body.append(_sym((x + nxt) / 2, y_cell + 16, "W_hh", size=13))
            body.append(_sym((x + nxt) / 2, y_cell - 16, f"h_{name}", size=15))
            # the backward (BPTT) message from step k+1 to step k
            body.append(_line([(nxt - 20, y_back), (x + 20, y_back)], color=BACKWARD, dash="6 4",
                              marker="arrow-back"))
            body.append(_sym((x + nxt) / 2, y_back - 16, f"δ_{name}", size=14, color=BACKWARD))
    x_last = xs[-1]
    body.append(_line([(x_last + 40, y_cell), (x_last + 75, y_cell)]))
    body.append(_sym(x_last + 92, y_cell, "ℒ", size=18))
    body.append(_line([(x_last + 92, y_cell - 18), (x_last + 92, y_back), (x_last + 20, y_back)],
                      color=BACKWARD, dash="6 4", marker="arrow-back"))
    body.append(_text(left - 70, y_back, "BPTT", size=13, anchor="start", color=BACKWARD, weight="bold"))
    alt = (f"An RNN unrolled over {steps} time steps: {steps} identical tanh cells in a row, each reading "
           f"its input x_t from below through the same weights W_ih and passing its state h_t to the next "
           f"cell through the same weights W_hh; the last state h_L feeds the loss. A dashed red line runs "
           f"backwards along the top from the loss to the first step: backpropagation through time, one "
           f"message delta_t per step.")
    return Diagram(_svg(width, 300, body, alt), alt)


LSTM_STAGES = ("cell_state", "forget", "input", "output")

#: Opacity of the parts a stage of :func:`lstm_cell` has not introduced yet (drawn dashed and unlabelled).
GHOST_OPACITY = 0.3


def _ghost(parts: list[str]) -> str:
    """Parts still to come: faint, dashed (stroke-dasharray is inherited), and never labelled."""
    return (f"<g class='to-come' opacity='{GHOST_OPACITY}' stroke-dasharray='5 4'>" + "".join(parts)
            + "</g>")


def lstm_cell(stage: str = "output") -> Diagram:
    """The LSTM cell built up in four stages: the cell-state path, + forget gate, + input gate
    and candidate, + output gate (``stage`` names the last part drawn; new parts are outlined green).

    Every stage draws the whole cell in the same place, so the pictures differ only in what is
    finished: the parts a stage has not reached yet are faint dashed outlines without labels.
    """
    if stage not in LSTM_STAGES:
        raise ValueError(f"stage must be one of {LSTM_STAGES}, got {stage!r}")
    level = LSTM_STAGES.index(stage)
    s = lstm_structure()
    squash = {"sigmoid": "σ", "tanh": "tanh"}
    y_c, y_gate, y_bus, y_mix, y_h = 70, 235, 300, 150, 190
    x_forget, x_write, x_out = 190, 340, 540
    gate_x = {"f": 190, "i": 300, "g": 380, "o": 470}
    introduced = {"f": 1, "i": 2, "g": 2, "o": 3}          # the stage at which each gate appears

    def gate(name: str) -> list[str]:
        """One gate block on the input bus; labelled (symbol and squashing function) once it is drawn."""
        x, shown = gate_x[name], level >= introduced[name]
        fill = FILL[s.activation[name]]
        box = _box(x, y_gate, 58, 36, fill, squash[s.activation[name]] if shown else "",
                   highlight=shown and introduced[name] == level)
        parts = [box, _line([(x, y_bus), (x, y_gate + 18)])]
        if shown:
            parts.append(_sym(x + 36, y_gate - 22, f"{name}_t", size=15, anchor="start"))
        return parts

    # Each part of the cell, with the stage that introduces it (0: the cell-state path).
    parts: dict[int, list[str]] = {0: [], 1: [], 2: [], 3: []}
    parts[0].append(f"<rect x='80' y='32' width='520' height='290' rx='16' fill='none' "
                    f"stroke='currentColor' stroke-opacity='0.35' stroke-width='1.5'/>")
    # the cell-state path: c_{t-1} -> [x f] -> [+ i*g] -> c_t; it breaks only at the operations drawn on it
    stops = [x for x, lvl in ((x_forget, 1), (x_write, 2)) if level >= lvl]
    xs = [62] + [v for x in stops for v in (x - 14, x + 14)] + [620]
    for k in range(0, len(xs), 2):
        parts[0].append(_line([(xs[k], y_c), (xs[k + 1], y_c)], width=3.5, arrow=k + 2 == len(xs)))
    parts[0].append(_sym(40, y_c, "c_{t-1}", size=16))
    parts[0].append(_sym(640, y_c, "c_t", size=16))
    if level == 0:
        parts[0].append(_text(340, 16, "the cell state, carried from step to step with no weight matrix on the way",
                              size=13))
    # the inputs every gate reads: h_{t-1} and x_t, on one bus along the bottom
    parts[1] += [_line([(40, y_bus), (480, y_bus)], arrow=False),
                 _line([(110, 345), (110, y_bus)], arrow=False)]
    if level >= 1:
        parts[1] += [_sym(30, y_bus + 22, "h_{t-1}", size=15, anchor="start"), _sym(110, 356, "x_t", size=15)]
    # forget gate: f_t multiplies the cell state
    parts[1] += gate("f") + [_node(x_forget, y_c, "×" if level >= 1 else "", highlight=level == 1),
                             _line([(gate_x["f"], y_gate - 18), (gate_x["f"], y_c + 14)])]
    # input gate and candidate: i_t * g_t is added to the cell state
    parts[2] += gate("i") + gate("g") + [
        _node(x_write, y_c, "+" if level >= 2 else "", highlight=level == 2),
        _node(x_write, y_mix, "×" if level >= 2 else "", highlight=level == 2),
        _line([(gate_x["i"], y_gate - 18), (gate_x["i"], y_mix), (x_write - 14, y_mix)]),
        _line([(gate_x["g"], y_gate - 18), (gate_x["g"], y_mix), (x_write + 14, y_mix)]),
        _line([(x_write, y_mix - 13), (x_write, y_c + 14)])]
    # output gate: h_t = o_t * tanh(c_t)
    parts[3] += gate("o") + [
        _box(x_out, 130, 56, 30, FILL["tanh"], "tanh" if level >= 3 else "", size=13, highlight=level == 3),
        _line([(x_out, y_c), (x_out, 114)]),
        _node(x_out, y_h, "×" if level >= 3 else "", highlight=level == 3),
        _line([(x_out, 146), (x_out, y_h - 14)]),
        _line([(gate_x["o"], y_gate - 18), (gate_x["o"], y_h), (x_out - 14, y_h)]),
        _line([(x_out + 14, y_h), (620, y_h)])]
    if level >= 3:
        parts[3].append(_sym(640, y_h, "h_t", size=16))

    body = []
    for lvl in range(4):
        body += parts[lvl] if lvl <= level else [_ghost(parts[lvl])]
    rows = " | ".join(s.order)
    body.append(_text(640, 345, f"rows of W_ih, W_hh: {rows}", size=12, anchor="end"))

    present = [g for g in ("f", "i", "g", "o") if level >= introduced[g]]
    names = {"f": "forget gate f_t", "i": "input gate i_t", "g": "candidate g_t", "o": "output gate o_t"}
    described = ["the cell state runs straight across the top from c_t-1 to c_t with no weight matrix on it"]
    if level >= 1:
        described.append("a sigmoid forget gate f_t, computed from h_t-1 and x_t, multiplies it")
    if level >= 2:
        described.append("a sigmoid input gate i_t times a tanh candidate g_t is added to it")
    if level >= 3:
        described.append("the new cell state, squashed by tanh and multiplied by a sigmoid output gate o_t, "
                         "leaves as the hidden state h_t")
    if level < 3:
        described.append("the parts added in the next steps are drawn as faint dashed outlines")
    alt = (f"LSTM cell, step {level + 1} of 4 ({', '.join(names[g] for g in present) or 'cell state only'}): "
           + "; ".join(described) + ".")
    return Diagram(_svg(660, 365, body, alt), alt)


def gru_cell(reset: str | None = None) -> Diagram:
    """The GRU cell; the reset gate drawn where ``reset`` says, by default where the reference puts it."""
    s = gru_structure()
    reset = reset or s.reset
    if reset not in ("after", "before"):
        raise ValueError(f"reset must be 'after' or 'before', got {reset!r}")
    squash = {"sigmoid": "σ", "tanh": "tanh"}
    body = []
    y_h, y_bus = 70, 345
    # the state path h_{t-1} -> [x z] -> [+ (1-z) n] -> h_t
    body.append(_sym(38, y_h, "h_{t-1}", size=16))
    for x0, x1, last in ((64, 236, False), (264, 456, False), (484, 640, True)):   # broken at the two nodes
        body.append(_line([(x0, y_h), (x1, y_h)], width=3.5, arrow=last))
    body.append(_sym(660, y_h, "h_t", size=16))
    body.append(_node(250, y_h, "×"))
    body.append(_node(470, y_h, "+"))
    body.append(_line([(40, y_bus), (660, y_bus)], arrow=False))
    body.append(_sym(30, y_bus + 22, "h_{t-1}", size=15, anchor="start"))
    body.append(_line([(110, 390), (110, y_bus)], arrow=False))
    body.append(_sym(110, 398, "x_t", size=15))
    # update gate z_t: keeps z of the old state, lets 1 - z of the candidate in
    body.append(_box(250, 262, 56, 36, FILL[s.activation["z"]], squash[s.activation["z"]]))
    body.append(_sym(216, 238, "z_t", size=15, anchor="end"))
    body.append(_line([(250, y_bus), (250, 280)]))
    body.append(_line([(250, 244), (250, y_h + 14)]))
    body.append(_line([(250, 150), (316, 150)]))
    body.append(_node(330, 150, "1−", size=12))
    body.append(_line([(344, 150), (456, 150)]))
    body.append(_node(470, 150, "×"))
    body.append(_line([(470, 137), (470, y_h + 14)]))
    # candidate n_t = tanh(W_in x_t + b_in + reset term)
    body.append(_box(470, 205, 60, 34, FILL[s.activation["n"]], squash[s.activation["n"]]))
    body.append(_sym(508, 182, "n_t", size=15, anchor="start"))
    body.append(_line([(470, 188), (470, 164)]))
    body.append(_node(470, 262, "+"))
    body.append(_line([(470, 248), (470, 222)]))
    body.append(_line([(400, y_bus), (400, 262), (456, 262)]))
    body.append(_sym(392, 300, "W_in", size=13, anchor="end"))
    # reset gate r_t, on the right, and the recurrent product W_hn
    y_mult, y_w = (262, 305) if reset == "after" else (305, 262)
    body.append(_box(650, y_mult, 56, 36, FILL[s.activation["r"]], squash[s.activation["r"]]))
    body.append(_sym(650, y_mult - 30, "r_t", size=15))
    body.append(_line([(650, y_bus), (650, y_mult + 18)]))
    body.append(_line([(622, y_mult), (574, y_mult)]))
    body.append(_node(560, y_mult, "×"))
    body.append(_box(560, y_w, 66, 28, FILL["op"], _label("W_hn"), size=13))
    if reset == "after":
        body.append(_line([(560, y_bus), (560, y_w + 14)]))           # h_{t-1} -> W_hn
        body.append(_line([(560, y_w - 14), (560, y_mult + 14)]))     # W_hn h + b_hn -> x r_t
        body.append(_line([(546, y_mult), (484, 262)]))
        note = "r_t multiplies the product W_hn h_t−1 + b_hn"
    else:
        body.append(_line([(560, y_bus), (560, y_mult + 14)]))        # h_{t-1} -> x r_t
        body.append(_line([(560, y_mult - 14), (560, y_w + 14)]))     # r_t h -> W_hn
        body.append(_line([(527, y_w), (484, 262)]))
        note = "r_t multiplies h_t−1 before the product W_hn"
    body.append(_text(690, 398, note, size=12, anchor="end"))
    order = " | ".join(s.order)
    body.append(_text(690, 20, f"rows of W_ih, W_hh: {order}", size=12, anchor="end"))
    where = ("after the recurrent product: r_t multiplies W_hn h_t-1 + b_hn" if reset == "after"
             else "before the recurrent product: r_t multiplies h_t-1, which then goes through W_hn")
    alt = ("GRU cell: the state runs across the top from h_t-1 to h_t. A sigmoid update gate z_t keeps "
           "the fraction z_t of the old state and lets 1 - z_t of the candidate n_t in; the candidate is "
           f"a tanh of the input and of the old state, and the sigmoid reset gate r_t acts {where}.")
    return Diagram(_svg(700, 410, body, alt), alt)


def dependency_paths(length: int = 6) -> Diagram:
    """How many sequential steps separate x_1 from the output at the last position: recurrence
    (a chain of ``length - 1`` state updates) against causal self-attention (one step)."""
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    gap, left = 90, 60
    width = left + gap * length + 60
    xs = [left + gap * k for k in range(length)]
    body = [_text(10, 30, f"recurrence: x₁ reaches position {length} after {length - 1} sequential steps",
                  size=14, anchor="start", weight="bold")]
    for k, x in enumerate(xs):
        body.append(_sym(x, 130, f"x_{k + 1}", size=14))
        body.append(_line([(x, 118), (x, 96)]))
        body.append(_box(x, 80, 44, 30, FILL["tanh"], _label(f"h_{k + 1}"), size=14))
        if k + 1 < length:
            body.append(_line([(x + 22, 80), (xs[k + 1] - 22, 80)], width=2.5 if k == 0 or True else 2))
    y0 = 180
    body.append(_text(10, y0, f"causal self-attention: position {length} reads x₁ directly, in one step",
                      size=14, anchor="start", weight="bold"))
    for k, x in enumerate(xs):
        body.append(_sym(x, y0 + 130, f"x_{k + 1}", size=14))
        body.append(_box(x, y0 + 100, 44, 30, FILL["sigmoid"], _label(f"y_{k + 1}"), size=14))
        body.append(_line([(x, y0 + 118), (x, y0 + 116)], arrow=False))
    last = xs[-1]
    for k, x in enumerate(xs[:-1]):
        mid = (x + last) / 2
        height = 18 + 9 * (length - 1 - k)
        body.append(f"<path d='M{x},{y0 + 85} Q{mid},{y0 + 85 - 2 * height} {last - 6},{y0 + 85}' fill='none' "
                    f"stroke='currentColor' stroke-width='{2.5 if k == 0 else 1.4}' marker-end='url(#arrow)'/>")
    alt = (f"Two rows of {length} positions. Top, a recurrent network: a chain of states h_1 to h_{length}, "
           f"so information from x_1 passes through {length - 1} state updates, one after the other, before "
           f"it reaches position {length}. Bottom, causal self-attention: arcs connect position {length} "
           f"directly to every earlier position, so x_1 is one step away.")
    return Diagram(_svg(width, y0 + 150, body, alt), alt)
