"""What ``fit --ckpt_path`` keeps from its checkpoint and what it takes from the config and command line.

LightningCLI applies the checkpoint's hyper-parameters over the parsed config, and Lightning restores the
optimiser's state, learning rate included: an override would be dropped without a word. Here instead:

- the net (``model.init_args.net.*``: shape, activation, head, ...) cannot change on resume: a different value is
  refused, naming the key;
- the module's other settings (``rows_per_update``, ``epochs_per_step``, the divergence rule, ...) are the
  config's, and the new ``config.yaml`` records them; a changed setting is said once, with the checkpoint's value
  beside it. The optimiser's settings (learning rate, momentum, ...) are the config's too: the module puts them
  into the state it restores (:func:`models.optim.keep_configured_settings`).
"""

from __future__ import annotations

from typing import Any

import torch
from jsonargparse import Namespace

from commands.errors import ConfigError
from models.console import say

NET = "net"


def flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def module_settings_to_keep(config: Namespace, ckpt_path: str) -> dict[str, Any]:
    """Check the config's net against the checkpoint's and return the config's other module settings, which the
    CLI puts back after LightningCLI applied the checkpoint's (see :func:`keep_module_settings`)."""
    hparams = torch.load(ckpt_path, map_location="cpu", weights_only=True).get("hyper_parameters") or {}
    init_args = config.get("model", {}).get("init_args")
    if not hparams or not isinstance(init_args, Namespace):
        return {}
    configured = init_args.as_dict()
    saved_net, wanted_net = flat(hparams.get(NET) or {}), flat(configured.get(NET) or {})
    for key, saved in saved_net.items():
        if key in wanted_net and wanted_net[key] != saved and not key.startswith(("init", "bias_init", "legacy")):
            raise ConfigError(
                f"model.init_args.net.{key} is {wanted_net[key]!r} but --ckpt_path {ckpt_path} was trained with "
                f"{saved!r}: the net cannot change when a run resumes. Drop the override (or use the run's config), "
                "or start a new run without --ckpt_path"
            )
    kept = {key: value for key, value in configured.items() if key != NET and key in hparams}
    changed = {key: (hparams[key], value) for key, value in kept.items() if hparams[key] != value}
    for key, (before, now) in changed.items():
        say(f"Resuming with model.init_args.{key}={now!r} (the checkpoint's run had {before!r}).")
    return kept


def keep_module_settings(config: Namespace, kept: dict[str, Any]) -> None:
    """Put the config's module settings back over the checkpoint's."""
    for key, value in kept.items():
        config.model.init_args[key] = value
