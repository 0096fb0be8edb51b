"""Adapters: how the grader's plain-data inputs reach code that takes or returns framework
objects (Keras models, PyTorch modules).

An adapter runs in the kernel, calls the student's code and turns what it built into plain
data; the grader recomputes everything that decides points from that data in its own
process: it reads a Keras model's layers from its JSON configuration and counts their
parameters, runs its own forward pass on the trained weights to measure an accuracy, and
compares outputs for inputs it chose. Nothing an adapter reports *about* the kernel's
behaviour earns a point: such facts (which batches ``evaluate`` saw, whether gradients were
on) can only cost points, so a kernel that forges them gains nothing an honest correct
answer would not get. Like :mod:`cnncourse.checks.channel` it is sent into the kernel as text.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

MAX_CONFIG_BYTES = 1_000_000  # a model's JSON config larger than this is not sent


def _keras_description(model, probe=None) -> dict:
    """A Keras model as plain data: its type, its JSON config as UTF-8 bytes (a uint8 array:
    strings are cut at MAX_STRING characters, arrays are not) and, with ``probe`` images, its
    weights and its outputs for them (so that the checks can see that the model computes what
    its config and weights describe)."""
    import keras

    if not isinstance(model, keras.Model):
        return {"type": type(model).__name__}
    try:
        text = model.to_json()
    except Exception as exc:  # e.g. a subclassed model without get_config
        return {"type": type(model).__name__, "error": f"{type(exc).__name__}: {exc}"}
    data = text.encode("utf-8")
    if len(data) > MAX_CONFIG_BYTES:
        return {"type": type(model).__name__, "error": f"a config of {len(data):,} bytes"}
    described = {"type": type(model).__name__, "json": np.frombuffer(data, dtype=np.uint8).copy()}
    if probe is not None:
        described["weights"] = [np.asarray(w) for w in model.get_weights()]
        try:
            out = model(probe, training=False)
            described["outputs"] = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64)
        except Exception as exc:  # the model does not take the probe: the checks say so
            described["outputs_error"] = f"{type(exc).__name__}: {exc}"
    return described


def adapt_keras_model(namespace, builder, probe=None):
    """Call a builder twice: its model as data (see _keras_description), and whether it
    built a new model."""
    first, second = builder(), builder()
    return dict(_keras_description(first, probe), new_each_call=first is not second)


def adapt_keras_value(namespace, model, probe=None):
    """A model held in a variable (a trained one), as data."""
    return _keras_description(model, probe)


def adapt_keras_compile(namespace, compile_model):
    """Compile a tiny model of our own with the student's function; its compile config."""
    import keras

    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, activation="softmax")])
    compile_model(tiny)
    optimizer = getattr(tiny, "optimizer", None)
    loss = getattr(tiny, "loss", None)
    metrics = []
    try:
        metrics = [str(m) for m in (tiny.get_compile_config() or {}).get("metrics") or []]
    except Exception:  # an uncompiled model has no compile config
        pass
    return {
        "compiled": bool(getattr(tiny, "compiled", False)),
        "optimizer": type(optimizer).__name__ if optimizer is not None else "",
        "loss": loss if isinstance(loss, str) else type(loss).__name__,
        "loss_name": str(getattr(loss, "name", "") or getattr(loss, "__name__", "") or ""),
        "metrics": metrics,
    }


def adapt_torch_state(namespace, model):
    """A trained PyTorch module as data: its state_dict as arrays."""
    import torch

    if not isinstance(model, torch.nn.Module):
        return {"type": type(model).__name__}
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    return {"type": type(model).__name__, "state": state}


def adapt_value(namespace, value):
    """A notebook value as it is (plain data: the channel normalises it)."""
    return value


def adapt_torch_module(namespace, module_class, state, x):
    """Instantiate the student's module, load the grader's weights, run it on x.

    ``state`` maps parameter names to arrays (or is ``None``); returns the parameter shapes,
    the kinds of the layers that hold weights, whether the weights were loaded, and, when
    ``x`` is given (and the weights, if any, could be loaded), the output on ``x`` (eval
    mode) and whether it depends on the weights.
    """
    import torch

    module = module_class()
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    kinds = []
    for sub in module.modules():
        if not any(True for _ in sub.children()) and any(True for _ in sub.parameters(False)):
            kinds.append(type(sub).__name__)
    loaded = False
    if (
        state
        and set(state) == set(shapes)
        and all(tuple(np.shape(state[k])) == shapes[k] for k in shapes)
    ):
        module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        loaded = True
    result = {"shapes": {k: list(v) for k, v in shapes.items()}, "kinds": kinds, "loaded": loaded}
    if x is not None and (loaded or not state):  # no run with weights other than the grader's
        module.eval()
        out = module(torch.from_numpy(np.ascontiguousarray(x)))
        result["requires_grad"] = bool(getattr(out, "requires_grad", False))
        result["output"] = out.detach().double().numpy() if hasattr(out, "detach") else out
    return result


def adapt_torch_evaluate(namespace, evaluate, weight, bias, x, y, batch_size):
    """Run the student's evaluate on a linear model of the grader's weights; record batches."""
    import torch
    from torch import nn

    class Recorder(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.batches: list[int] = []
            self.grad: list[bool] = []

        def forward(self, data):
            self.batches.append(int(data.shape[0]))
            self.grad.append(torch.is_grad_enabled())
            return self.inner(data)

    linear = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0]))
    with torch.no_grad():
        linear[1].weight.copy_(torch.from_numpy(weight))
        linear[1].bias.copy_(torch.from_numpy(bias))
    recorder = Recorder(linear)
    accuracy = evaluate(recorder, x, y, batch_size)
    return {"accuracy": accuracy, "batches": recorder.batches, "grad_enabled": recorder.grad}


def adapt_keras_to_torch(
    namespace, copy_weights, weights, x_nchw, builder="build_keras_lecture_cnn", module="LectureCNN"
):
    """Copy a Keras model holding the grader's weights into a new module of the student's
    class (in place, as the exercise asks); the module's logits on x (the grader computes
    the expected ones from the same weights) and whether the Keras weights stayed as they
    were."""
    import torch

    keras_model = namespace[builder]()
    keras_model.set_weights([np.asarray(w) for w in weights])
    before = [w.copy() for w in keras_model.get_weights()]
    torch_model = namespace[module]()
    copy_weights(keras_model, torch_model)
    after = keras_model.get_weights()
    unchanged = len(after) == len(before) and all(
        np.array_equal(a, b) for a, b in zip(before, after, strict=True)
    )
    torch_model.eval()
    with torch.no_grad():
        logits = torch_model(torch.from_numpy(np.ascontiguousarray(x_nchw)))
    return {"logits": logits.double().numpy(), "keras_unchanged": bool(unchanged)}


ADAPTERS = {
    "keras_model": adapt_keras_model,
    "keras_value": adapt_keras_value,
    "keras_compile": adapt_keras_compile,
    "torch_state": adapt_torch_state,
    "value": adapt_value,
    "torch_module": adapt_torch_module,
    "torch_evaluate": adapt_torch_evaluate,
    "keras_to_torch": adapt_keras_to_torch,
}
