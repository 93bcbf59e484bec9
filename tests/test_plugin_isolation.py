"""One broken plugin never breaks the others: load errors, raising hooks, invalid registrations, name clashes."""

from __future__ import annotations

from types import ModuleType

import pytest

from workbench import hookimpl
from plugins.losses import BCELoss
from plugins.mlp_gan import build as build_mlp
from workbench.base.params import HyperParam, training_params
from workbench.host.manager import load_plugins
from workbench.host.registry import LossSpec, ModelSpec
from workbench.modeling.model import TwoNetworkGAN


def plugin(name: str, **functions) -> ModuleType:
    """A plugin module named ``name`` holding ``functions``."""
    module = ModuleType(name)
    for attr, function in functions.items():
        setattr(module, attr, function)
    return module


def model_plugin(name: str, spec) -> ModuleType:
    @hookimpl
    def ganbench_register_models(register):
        register(spec)

    return plugin(name, ganbench_register_models=ganbench_register_models)


def spec(name: str = "local_gan", **changes) -> ModelSpec:
    fields = dict(name=name, description="a test model", build=build_mlp,
                  hyperparams=training_params(64, 2e-4, 1) + (HyperParam("latent_dim", "int", 8),))
    fields.update(changes)
    return ModelSpec(**fields)


def test_a_raising_registration_hook_is_reported_and_the_core_still_loads():
    @hookimpl
    def ganbench_register_models(register):
        register(spec("half_registered"))
        raise RuntimeError("the database is down")

    plugins = load_plugins([plugin("flaky", ganbench_register_models=ganbench_register_models)])
    info = next(p for p in plugins.plugins if p.name == "flaky")
    assert info.error == "ganbench_register_models raised RuntimeError: the database is down"
    assert 'Plugin "flaky" ((local)): ganbench_register_models raised RuntimeError: the database is down.' \
        in plugins.errors
    assert {"mlp_gan", "dcgan", "aae"} <= set(plugins.registry.models)
    assert "half_registered" in plugins.registry.models  # what it registered before failing stays usable


@pytest.mark.parametrize("bad, phrase", [
    (spec(build=None), "its build is None, not a function"),
    (spec(name="a/b"), "the name 'a/b' is not 1 to 64 letters"),
    (spec(name=""), "the name '' is not"),
    (spec(hyperparams=(HyperParam("lr", "float", 1e-3),)), "declares no batch_size or epochs hyper-parameter"),
    (spec(hyperparams=training_params(64, 2e-4, 1) + (HyperParam("image_size", "int", 28, choices=(32, 64)),)),
     "the default of image_size is not allowed (image_size must be one of 32, 64; got 28.)"),
    (spec(hyperparams=training_params(64, 2e-4, 1) * 2), "it declares b1, b2, batch_size, epochs, lr more than once"),
    (spec(hyperparams=[{"name": "batch_size"}]), "its hyperparams must be a tuple of workbench.base.params.HyperParam"),
    (spec(description=None), "its description is None, not a string"),
])
def test_an_invalid_model_spec_is_left_out_with_the_reason(bad, phrase):
    plugins = load_plugins([model_plugin("sloppy", bad)])
    info = next(p for p in plugins.plugins if p.name == "sloppy")
    assert phrase in info.error
    assert info.error.startswith(f"registered an invalid ModelSpec {bad.name!r}: ")
    assert bad.name not in plugins.registry.models
    assert any(e.startswith('Plugin "sloppy" ((local)): registered an invalid ModelSpec') for e in plugins.errors)
    assert "mlp_gan" in plugins.registry.models


def test_registering_the_wrong_kind_of_object_is_reported():
    plugins = load_plugins([model_plugin("confused", LossSpec("x", "a loss in the wrong place", BCELoss))])
    info = next(p for p in plugins.plugins if p.name == "confused")
    assert info.error == "registered a LossSpec where a ModelSpec belongs; it is ignored"
    assert "x" not in plugins.registry.models


def test_a_name_registered_twice_names_both_distributions_and_the_core_keeps_it():
    plugins = load_plugins([model_plugin("usurper", spec("mlp_gan"))])
    message = ('Model "mlp_gan" is registered by both ganbench (plugin mlp_gan) and (local) (plugin usurper); '
               "keeping the one from ganbench.")
    assert message in plugins.errors
    assert plugins.registry.models["mlp_gan"].dist == "ganbench"
    assert next(p for p in plugins.plugins if p.name == "usurper").error == message


def test_a_misspelt_hook_is_reported_with_the_right_name():
    @hookimpl
    def ganbench_register_model(register):
        register(spec())

    plugins = load_plugins([plugin("typo", ganbench_register_model=ganbench_register_model)])
    error = next(p for p in plugins.plugins if p.name == "typo").error
    assert error == ('implements ganbench_register_model, which is not a ganbench hook, so it is never called. '
                     'Did you mean "ganbench_register_models"?')


def test_a_hook_without_the_decorator_is_reported():
    def ganbench_register_models(register):
        register(spec())

    plugins = load_plugins([plugin("undecorated", ganbench_register_models=ganbench_register_models)])
    error = next(p for p in plugins.plugins if p.name == "undecorated").error
    assert error == "defines ganbench_register_models without the @hookimpl decorator, so it is never called"
    assert "local_gan" not in plugins.registry.models


def test_a_hook_with_arguments_the_hook_does_not_offer_fails_to_load_but_alone():
    @hookimpl
    def ganbench_register_models(reg):
        reg(spec())

    plugins = load_plugins([plugin("wrong_args", ganbench_register_models=ganbench_register_models)])
    error = next(p for p in plugins.plugins if p.name == "wrong_args").error
    assert error.startswith("failed to load: hookimpl definition: ganbench_register_models(reg); Argument(s) {'reg'}")
    assert "\n" not in error
    assert "mlp_gan" in plugins.registry.models


def test_a_model_whose_default_dataset_nobody_registers_is_reported():
    plugins = load_plugins([model_plugin("lonely", spec(dataset="imagenet-21k"))])
    assert ('Model "local_gan" (plugin lonely from (local)) defaults to dataset "imagenet-21k", which no loaded '
            "plugin registers; name one with --dataset.") in plugins.errors
    assert "local_gan" in plugins.registry.models


def test_the_block_list_takes_entry_point_names(monkeypatch):
    # pix2pix and cyclegan train on celeba's "folder" by default: blocked with it, or they would say so
    monkeypatch.setenv("GANBENCH_DISABLE_PLUGINS", "celeba, dcgan, pix2pix, cyclegan")
    plugins = load_plugins()
    assert {"celeba (ganbench)", "dcgan (ganbench)"} <= set(plugins.disabled)
    assert "folder" not in plugins.registry.datasets and "dcgan" not in plugins.registry.models
    assert "mlp_gan" in plugins.registry.models and plugins.errors == []


def test_the_allow_list_loads_only_what_it_names(monkeypatch):
    monkeypatch.setenv("GANBENCH_PLUGINS", "mlp_gan,losses,mnist")
    plugins = load_plugins()
    assert sorted(p.name for p in plugins.plugins) == ["losses", "mlp_gan", "mnist"]
    assert set(plugins.registry.models) == {"mlp_gan"}
    assert plugins.errors == []


def test_the_lists_take_distribution_names_too(monkeypatch):
    monkeypatch.setenv("GANBENCH_DISABLE_PLUGINS", "GanBench")  # names are normalised like pip does
    plugins = load_plugins()
    assert plugins.plugins == [] and plugins.registry.models == {}
    assert "mlp_gan (ganbench)" in plugins.disabled


def test_an_unknown_name_in_the_allow_list_is_reported(monkeypatch):
    monkeypatch.setenv("GANBENCH_PLUGINS", "mlp_gan,losses,mnist,mlpgan")
    plugins = load_plugins()
    assert ('GANBENCH_PLUGINS names "mlpgan", which is neither an installed plugin nor a distribution that '
            'provides one. Did you mean "mlp_gan"?') in plugins.errors


def test_a_valid_local_model_registers_with_its_plugin_and_trains_its_build():
    plugins = load_plugins([model_plugin("fine", spec())])
    item = plugins.registry.models["local_gan"]
    assert (item.plugin, item.dist) == ("fine", "(local)")
    info = next(p for p in plugins.plugins if p.name == "fine")
    assert info.error is None and info.registered == {"models": ["local_gan"]}
    assert info.hooks == ["ganbench_register_models"]
    model = item.spec.build({"latent_dim": 8, **{p.name: p.default for p in training_params(64, 2e-4, 1)}},
                            (1, 28, 28))
    assert isinstance(model, TwoNetworkGAN)
