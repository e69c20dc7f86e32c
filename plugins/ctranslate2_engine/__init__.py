"""The ``ctranslate2`` translation engine plugin: NLLB-200, MADLAD-400 and OPUS-MT models run
offline with CTranslate2 (optional extra ``ctranslate2``: ``pip install '.[ctranslate2]'``).

Install a model folder with ``gateway translate install --model DIR`` (or name it in
``translation.engine_settings.ctranslate2.model_dir``) and list ``ctranslate2`` in
``translation.engines``. See :mod:`.engine` for how each family is driven and :mod:`.models`
for the folder layout and licences.
"""

from __future__ import annotations

from gateway import hookimpl

from .codes import NLLB_TO_BCP47, madlad_candidates, nllb_code
from .engine import CTranslate2Engine, CTranslate2Settings, InstalledModel, cached_models
from .models import LICENCES, ModelFolder, inspect_model

__all__ = [
    "LICENCES",
    "NLLB_TO_BCP47",
    "CTranslate2Engine",
    "CTranslate2Settings",
    "InstalledModel",
    "ModelFolder",
    "cached_models",
    "gateway_translation_engines",
    "inspect_model",
    "madlad_candidates",
    "nllb_code",
]


@hookimpl
def gateway_translation_engines() -> list[type]:
    """The engine this plugin provides."""
    return [CTranslate2Engine]
