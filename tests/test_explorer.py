"""cnncourse.explorer: the window geometry, the formula text, the widget and its fallback."""

from __future__ import annotations

import base64
import re
import sys

import pytest

from cnncourse import architecture as arch
from cnncourse import explorer as ex

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- pure parts


def test_geometry_of_the_worked_example():
    geom = ex.geometry(7, 3, 0, 2)
    assert geom.n_out == 3 and geom.starts == (0, 2, 4) and geom.n_padded == 7
    assert all(geom.read)
    assert ex.window_cells(geom, 2, 2)[0] == (4, 4) and ex.window_cells(geom, 2, 2)[-1] == (6, 6)


def test_floor_leaves_the_last_column_unread():
    geom = ex.geometry(6, 3, 0, 2)
    assert geom.n_out == 2 and geom.starts == (0, 2)
    assert geom.read == (True, True, True, True, True, False)


def test_padding_and_dilation():
    geom = ex.geometry(5, 3, 1, 1)
    assert geom.n_padded == 7 and geom.n_out == 5 and geom.starts == (0, 1, 2, 3, 4)
    dil = ex.geometry(9, 3, 0, 3, 2)
    assert dil.span == 5 and dil.n_out == 2 and dil.starts == (0, 3)
    # taps at 0, 2, 4 and 3, 5, 7: index 1, 6 and 8 are never read
    assert [i for i, r in enumerate(dil.read) if not r] == [1, 6, 8]
    assert ex.window_cells(dil, 1, 0) == [(r, c) for r in (3, 5, 7) for c in (0, 2, 4)]
    with pytest.raises(ValueError):
        ex.window_cells(dil, 2, 0)


@pytest.mark.parametrize("n", range(2, 17))
def test_geometry_agrees_with_architecture(n):
    for f in range(1, 8):
        for pad in range(4):
            for stride in range(1, 5):
                for dilation in range(1, 4):
                    geom = ex.geometry(n, f, pad, stride, dilation)
                    try:
                        expected = arch.conv_output_size(n, f, pad, stride, dilation)
                    except ValueError:
                        expected = 0
                    assert geom.n_out == expected == len(geom.starts)
                    if geom.fits:  # the last window ends inside the padded input
                        assert geom.starts[-1] + geom.span <= geom.n_padded


def test_formula_text():
    text = ex.formula_text(7, 3, 0, 2)
    assert text == "n_out = floor((n + 2p - f) / s) + 1 = floor((7 + 2*0 - 3) / 2) + 1 = 3"
    assert ex.formula_text(28, 5).endswith("= 24")
    assert ex.formula_text(7, 3, 1, 2, 2).startswith("f_eff = f + (f - 1)(d - 1) = 3 + 2*1 = 5;")
    assert ex.formula_text(7, 3, 1, 2, 2).endswith("floor((7 + 2*1 - 5) / 2) + 1 = 3")
    assert ex.formula_text(2, 5).endswith("it does not fit = none")
    for bad in [(7, 3, 0, 0), (7, 3, -1, 1), (0, 3), (7, 3, 0, 1, 0)]:
        with pytest.raises(ValueError):
            ex.formula_text(*bad)


def test_static_drawing():
    static = ex.StaticExplorer(n=6, f=3, pad=1, stride=2, position=3)
    png = static.png()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000
    bundle = static._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == png
    assert bundle["text/plain"].endswith("= 3")
    title = static.figure._suptitle.get_text()
    assert title == ex.formula_text(6, 3, 1, 2)
    # the chosen output cell (1, 0) is red in the output panel; 3x3 = 9 output cells
    assert len(static.figure.axes[1].patches) == 9
    # the window that does not fit is drawn too, with its reason
    assert "does not fit" in ex.StaticExplorer(n=3, f=7).formula


# --------------------------------------------------------------------------- widget and fallback


def test_falls_back_to_static_without_a_kernel():
    assert ex.widgets_available() is False  # pytest runs no IPython kernel
    assert isinstance(ex.explorer(), ex.StaticExplorer)
    assert isinstance(ex.explorer(use_widgets=False), ex.StaticExplorer)


def test_falls_back_to_static_without_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    assert ex.widgets_available() is False
    assert isinstance(ex.explorer(n=9), ex.StaticExplorer)


def test_widget_redraws_on_slider_change():
    pytest.importorskip("ipywidgets")
    box = ex.explorer(n=7, f=3, pad=0, stride=2, use_widgets=True)
    assert "cnn-explorer" in box._dom_classes
    assert {s.description for s in box.sliders.values()} == {
        "n",
        "f",
        "stride",
        "pad",
        "dilation",
        "position",
    }
    for name, slider in box.sliders.items():
        assert f"cnn-explorer-{name}" in slider._dom_classes
    assert "cnn-explorer-formula" in box.formula._dom_classes

    def n_out() -> str:
        return re.search(r'class="cnn-explorer-nout">([^<]*)<', box.formula.value).group(1)

    assert n_out() == "3" and box.sliders["position"].max == 8
    before = box.image.value
    box.sliders["stride"].value = 1
    assert n_out() == "5" and box.sliders["position"].max == 24
    assert bytes(box.image.value) != bytes(before)
    assert bytes(box.image.value).startswith(PNG_SIGNATURE)
    box.sliders["position"].value = 24
    box.sliders["f"].value = 7  # window no longer fits: position clamps to 0
    assert n_out() == "1" and box.sliders["position"].value == 0
    box.sliders["n"].value = 2
    assert n_out() == "none"
    box.sliders["pad"].value = 3
    assert n_out() == "2"
    # the display data carry the static PNG of the current setting next to the widget view
    data = box._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert "application/vnd.jupyter.widget-view+json" in data
    assert base64.b64decode(data["image/png"]).startswith(PNG_SIGNATURE)
    assert data["text/plain"].endswith("= 2")


def test_explorer_rejects_impossible_settings():
    with pytest.raises(ValueError):
        ex.explorer(stride=0, use_widgets=False)
