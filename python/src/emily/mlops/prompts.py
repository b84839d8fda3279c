"""The cognition prompt in MLflow's prompt registry (``mlflow.genai``): registered once per
distinct text, the alias ``production`` names the version the agent uses, and the agent
records that version on its traces.

A prompt is a chat template: a system message and a user message over ``{{situation}}``,
``{{mood}}`` and ``{{memories}}`` (MLflow's double-brace variables). Registration is
idempotent: the same text is never registered twice, and ``production`` is set only when no
version holds it yet (moving it later is a deliberate act: ``emily mlops prompt-alias``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emily.errors import EmilyError
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.config import Settings

log = get_logger("mlops.prompts")
VARIABLES = ("situation", "mood", "memories")


class PromptError(EmilyError):
    """The prompt registry refused, or holds no usable prompt."""


@dataclass(frozen=True)
class RegisteredPrompt:
    """A prompt version as the agent uses it: single-brace templates, and its registry URI."""

    system: str
    user: str
    version: int
    uri: str


def to_registry(text: str) -> str:
    """``{situation}`` → ``{{situation}}`` for our variables only."""
    for name in VARIABLES:
        text = text.replace("{" + name + "}", "{{" + name + "}}")
    return text


def from_registry(text: str) -> str:
    for name in VARIABLES:
        text = text.replace("{{" + name + "}}", "{" + name + "}")
    return text


def _messages(prompt: Any) -> tuple[str, str]:
    template = prompt.template
    if not isinstance(template, list):
        raise PromptError(f"prompt {prompt.uri} is not a chat template", field="template")
    by_role = {m.get("role"): str(m.get("content", "")) for m in template}
    if "system" not in by_role or "user" not in by_role:
        raise PromptError(f"prompt {prompt.uri} needs a system and a user message")
    return by_role["system"], by_role["user"]


def _connect(settings: Settings) -> None:
    from emily.mlops.tracking import connect

    connect(settings)


def register(
    settings: Settings, *, system: str, user: str, message: str = "emily up"
) -> tuple[RegisteredPrompt, bool]:
    """The version holding this text (registered now if new) and whether it is new; sets
    ``production`` when the alias does not exist yet."""
    import mlflow.genai

    _connect(settings)
    name, alias = settings.mlops.prompt_name, settings.mlops.prompt_alias
    template = [
        {"role": "system", "content": to_registry(system)},
        {"role": "user", "content": to_registry(user)},
    ]
    latest = mlflow.genai.load_prompt(f"prompts:/{name}@latest", allow_missing=True)
    created = False
    if latest is not None and latest.template == template:
        prompt = latest
    else:
        prompt = mlflow.genai.register_prompt(
            name,
            template,
            commit_message=message,
            tags={"project": "emily-sovereign", "component": "cognition"},
        )
        created = True
        log.info("prompt_registered", name=name, version=prompt.version)
    current = mlflow.genai.load_prompt(f"prompts:/{name}@{alias}", allow_missing=True)
    if current is None:
        mlflow.genai.set_prompt_alias(name, alias, int(prompt.version))
        log.info("prompt_alias_set", name=name, alias=alias, version=prompt.version)
    return _registered(prompt), created


def _registered(prompt: Any) -> RegisteredPrompt:
    system, user = _messages(prompt)
    return RegisteredPrompt(
        system=from_registry(system),
        user=from_registry(user),
        version=int(prompt.version),
        uri=f"prompts:/{prompt.name}/{prompt.version}",
    )


def load(settings: Settings, alias: str | None = None) -> RegisteredPrompt:
    """The version ``alias`` (default: ``production``) names."""
    import mlflow.genai

    _connect(settings)
    name = settings.mlops.prompt_name
    wanted = alias or settings.mlops.prompt_alias
    prompt = mlflow.genai.load_prompt(f"prompts:/{name}@{wanted}", allow_missing=True)
    if prompt is None:
        raise PromptError(
            f"no prompt {name}@{wanted} in the registry", hint="`emily up` registers it"
        )
    return _registered(prompt)


def set_alias(settings: Settings, alias: str, version: int) -> None:
    import mlflow.genai

    _connect(settings)
    mlflow.genai.set_prompt_alias(settings.mlops.prompt_name, alias, version)
    log.info("prompt_alias_set", name=settings.mlops.prompt_name, alias=alias, version=version)
