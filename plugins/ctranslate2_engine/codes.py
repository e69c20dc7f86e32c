"""Language codes: BCP 47 tags (what families' records hold) → each model family's own codes.

- **NLLB-200** names its 202 languages with FLORES-200 codes, ISO 639-3 plus script
  (``som_Latn``, ``prs_Arab``, ``zho_Hant``). :data:`NLLB_TO_BCP47` lists every one with the
  BCP 47 tag the gateway uses for it; macro-languages map to the variety NLLB has (``ar`` →
  ``arb_Arab`` Modern Standard Arabic, ``fa`` → ``pes_Arab`` Iranian Persian, ``prs`` / ``fa-AF``
  → ``prs_Arab`` Dari, ``ps`` → ``pbt_Arab`` Southern Pashto, ``ne`` → ``npi_Deva``, ``sw`` →
  ``swh_Latn``, ``ms`` → ``zsm_Latn``, ``ku`` → ``kmr_Latn`` Kurmanji...). A script in the tag
  must match the code's script (``sr-Latn`` finds nothing: NLLB has Serbian in Cyrillic only);
  without one, the region picks among scripts (``zh-TW`` → ``zho_Hant``).
- **MADLAD-400** puts a ``<2xx>`` token in front of the source; ``xx`` is mostly the ISO 639-1
  code (``<2so>``, ``<2sw>``), with script or region after an underscore for some. Which tokens
  exist is read from the model's vocabulary; :func:`madlad_candidates` gives the forms to try.
- **OPUS-MT (Marian)** models are one pair each, named ``opus-mt-{src}-{tgt}``;
  :func:`same_language` compares a tag with such a code.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

__all__ = [
    "NLLB_TO_BCP47",
    "bcp47_from_madlad",
    "madlad_candidates",
    "nllb_code",
    "same_language",
]

NLLB_TO_BCP47: Mapping[str, str] = {
    "ace_Arab": "ace-Arab", "ace_Latn": "ace", "acm_Arab": "acm", "acq_Arab": "acq",
    "aeb_Arab": "aeb", "afr_Latn": "af", "ajp_Arab": "ajp", "aka_Latn": "ak",
    "amh_Ethi": "am", "apc_Arab": "apc", "arb_Arab": "ar", "ars_Arab": "ars",
    "ary_Arab": "ary", "arz_Arab": "arz", "asm_Beng": "as", "ast_Latn": "ast",
    "awa_Deva": "awa", "ayr_Latn": "ay", "azb_Arab": "azb", "azj_Latn": "az",
    "bak_Cyrl": "ba", "bam_Latn": "bm", "ban_Latn": "ban", "bel_Cyrl": "be",
    "bem_Latn": "bem", "ben_Beng": "bn", "bho_Deva": "bho", "bjn_Arab": "bjn-Arab",
    "bjn_Latn": "bjn", "bod_Tibt": "bo", "bos_Latn": "bs", "bug_Latn": "bug",
    "bul_Cyrl": "bg", "cat_Latn": "ca", "ceb_Latn": "ceb", "ces_Latn": "cs",
    "cjk_Latn": "cjk", "ckb_Arab": "ckb", "crh_Latn": "crh", "cym_Latn": "cy",
    "dan_Latn": "da", "deu_Latn": "de", "dik_Latn": "dik", "dyu_Latn": "dyu",
    "dzo_Tibt": "dz", "ell_Grek": "el", "eng_Latn": "en", "epo_Latn": "eo",
    "est_Latn": "et", "eus_Latn": "eu", "ewe_Latn": "ee", "fao_Latn": "fo",
    "pes_Arab": "fa", "fij_Latn": "fj", "fin_Latn": "fi", "fon_Latn": "fon",
    "fra_Latn": "fr", "fur_Latn": "fur", "fuv_Latn": "fuv", "gla_Latn": "gd",
    "gle_Latn": "ga", "glg_Latn": "gl", "grn_Latn": "gn", "guj_Gujr": "gu",
    "hat_Latn": "ht", "hau_Latn": "ha", "heb_Hebr": "he", "hin_Deva": "hi",
    "hne_Deva": "hne", "hrv_Latn": "hr", "hun_Latn": "hu", "hye_Armn": "hy",
    "ibo_Latn": "ig", "ilo_Latn": "ilo", "ind_Latn": "id", "isl_Latn": "is",
    "ita_Latn": "it", "jav_Latn": "jv", "jpn_Jpan": "ja", "kab_Latn": "kab",
    "kac_Latn": "kac", "kam_Latn": "kam", "kan_Knda": "kn", "kas_Arab": "ks",
    "kas_Deva": "ks-Deva", "kat_Geor": "ka", "knc_Arab": "knc-Arab", "knc_Latn": "knc",
    "kaz_Cyrl": "kk", "kbp_Latn": "kbp", "kea_Latn": "kea", "khm_Khmr": "km",
    "kik_Latn": "ki", "kin_Latn": "rw", "kir_Cyrl": "ky", "kmb_Latn": "kmb",
    "kon_Latn": "kg", "kor_Hang": "ko", "kmr_Latn": "kmr", "lao_Laoo": "lo",
    "lvs_Latn": "lv", "lij_Latn": "lij", "lim_Latn": "li", "lin_Latn": "ln",
    "lit_Latn": "lt", "lmo_Latn": "lmo", "ltg_Latn": "ltg", "ltz_Latn": "lb",
    "lua_Latn": "lua", "lug_Latn": "lg", "luo_Latn": "luo", "lus_Latn": "lus",
    "mag_Deva": "mag", "mai_Deva": "mai", "mal_Mlym": "ml", "mar_Deva": "mr",
    "min_Latn": "min", "mkd_Cyrl": "mk", "plt_Latn": "mg", "mlt_Latn": "mt",
    "mni_Beng": "mni", "khk_Cyrl": "mn", "mos_Latn": "mos", "mri_Latn": "mi",
    "zsm_Latn": "ms", "mya_Mymr": "my", "nld_Latn": "nl", "nno_Latn": "nn",
    "nob_Latn": "nb", "npi_Deva": "ne", "nso_Latn": "nso", "nus_Latn": "nus",
    "nya_Latn": "ny", "oci_Latn": "oc", "gaz_Latn": "om", "ory_Orya": "or",
    "pag_Latn": "pag", "pan_Guru": "pa", "pap_Latn": "pap", "pol_Latn": "pl",
    "por_Latn": "pt", "prs_Arab": "prs", "pbt_Arab": "ps", "quy_Latn": "quy",
    "ron_Latn": "ro", "run_Latn": "rn", "rus_Cyrl": "ru", "sag_Latn": "sg",
    "san_Deva": "sa", "sat_Beng": "sat", "scn_Latn": "scn", "shn_Mymr": "shn",
    "sin_Sinh": "si", "slk_Latn": "sk", "slv_Latn": "sl", "smo_Latn": "sm",
    "sna_Latn": "sn", "snd_Arab": "sd", "som_Latn": "so", "sot_Latn": "st",
    "spa_Latn": "es", "als_Latn": "sq", "srd_Latn": "sc", "srp_Cyrl": "sr",
    "ssw_Latn": "ss", "sun_Latn": "su", "swe_Latn": "sv", "swh_Latn": "sw",
    "szl_Latn": "szl", "tam_Taml": "ta", "tat_Cyrl": "tt", "tel_Telu": "te",
    "tgk_Cyrl": "tg", "tgl_Latn": "fil", "tha_Thai": "th", "tir_Ethi": "ti",
    "taq_Latn": "taq", "taq_Tfng": "taq-Tfng", "tpi_Latn": "tpi", "tsn_Latn": "tn",
    "tso_Latn": "ts", "tuk_Latn": "tk", "tum_Latn": "tum", "tur_Latn": "tr",
    "twi_Latn": "tw", "tzm_Tfng": "tzm", "uig_Arab": "ug", "ukr_Cyrl": "uk",
    "umb_Latn": "umb", "urd_Arab": "ur", "uzn_Latn": "uz", "vec_Latn": "vec",
    "vie_Latn": "vi", "war_Latn": "war", "wol_Latn": "wo", "xho_Latn": "xh",
    "ydd_Hebr": "yi", "yor_Latn": "yo", "yue_Hant": "yue", "zho_Hans": "zh-Hans",
    "zho_Hant": "zh-Hant", "zul_Latn": "zu",
}  # fmt: skip
"""Every NLLB-200 language code → the BCP 47 tag the gateway uses for it."""

# Tags (lower case, as written) that name an NLLB language other than by its canonical tag:
# ISO 639-3 individual-language codes of macro-languages, older codes, regional forms.
_NLLB_ALIASES: Mapping[str, str] = {
    "prs": "prs_Arab", "fa-af": "prs_Arab", "fa-arab-af": "prs_Arab",
    "pes": "pes_Arab", "fa-ir": "pes_Arab",
    "arb": "arb_Arab", "npi": "npi_Deva", "swh": "swh_Latn", "sw-ke": "swh_Latn",
    "sw-tz": "swh_Latn", "zsm": "zsm_Latn", "lvs": "lvs_Latn", "khk": "khk_Cyrl",
    "plt": "plt_Latn", "gaz": "gaz_Latn", "als": "als_Latn", "uzn": "uzn_Latn",
    "azj": "azj_Latn", "ydd": "ydd_Hebr", "ory": "ory_Orya", "qu": "quy_Latn",
    "ayr": "ayr_Latn", "pbt": "pbt_Arab", "ku": "kmr_Latn", "kr": "knc_Latn",
    "ff": "fuv_Latn", "tl": "tgl_Latn", "fil": "tgl_Latn", "no": "nob_Latn",
    "zh": "zho_Hans", "cmn": "zho_Hans", "cmn-hans": "zho_Hans", "cmn-hant": "zho_Hant",
    "zh-yue": "yue_Hant", "mo": "ron_Latn", "est": "est_Latn", "ekk": "est_Latn",
}  # fmt: skip

_NLLB_BY_LANGUAGE: dict[str, list[str]] = {}
for _code, _tag in NLLB_TO_BCP47.items():
    _NLLB_BY_LANGUAGE.setdefault(_tag.split("-")[0].lower(), []).append(_code)


@lru_cache(maxsize=1024)
def _parse(tag: str) -> tuple[str, str | None, str]:
    """``(language, explicit script or None, likely script)`` of a BCP 47 tag."""
    import langcodes  # on first use: its name tables take ~50 ms to build at import

    try:
        language = langcodes.Language.get(tag)
        likely = language.maximize().script or ""
    except (langcodes.tag_parser.LanguageTagError, ValueError):
        primary = tag.split("-")[0].lower()
        return primary, None, ""
    return (language.language or "").lower(), language.script, likely


@lru_cache(maxsize=1024)
def nllb_code(tag: str) -> str | None:
    """The NLLB code for a BCP 47 tag, or ``None`` when NLLB has no such language or script.

    >>> nllb_code("so"), nllb_code("prs"), nllb_code("zh-TW"), nllb_code("sr-Latn")
    ('som_Latn', 'prs_Arab', 'zho_Hant', None)
    """
    lowered = tag.strip().replace("_", "-").lower()
    if not lowered:
        return None
    if lowered in _NLLB_ALIASES:
        return _NLLB_ALIASES[lowered]
    for code, canonical in NLLB_TO_BCP47.items():
        if canonical.lower() == lowered:
            return code
    language, script, likely = _parse(lowered)
    candidates = _NLLB_BY_LANGUAGE.get(language)
    if not candidates:
        alias = _NLLB_ALIASES.get(language)
        candidates = [alias] if alias else []
    if not candidates:
        return None
    if script:
        matching = [c for c in candidates if c.split("_")[1].lower() == script.lower()]
        return matching[0] if matching else None
    if len(candidates) == 1:
        return candidates[0]
    by_likely = [c for c in candidates if c.split("_")[1] == likely]
    return by_likely[0] if by_likely else candidates[0]


_MADLAD_ALIASES: Mapping[str, tuple[str, ...]] = {
    "prs": ("fa_AF", "prs", "fa"),
    "fa-af": ("fa_AF", "prs", "fa"),
    "fil": ("fil", "tl"),
    "tl": ("fil", "tl"),
    "he": ("he", "iw"),
    "jv": ("jv", "jw"),
    "nb": ("no", "nb"),
    "no": ("no", "nb"),
    "zh-hans": ("zh",),
    "zh-cn": ("zh",),
    "zh-hant": ("zh_Hant",),
    "zh-tw": ("zh_Hant",),
    "zh-hk": ("zh_Hant", "yue"),
    "cmn": ("zh",),
    "swh": ("sw",),
    "npi": ("ne",),
    "pbt": ("ps",),
    "arb": ("ar",),
}


def madlad_candidates(tag: str) -> tuple[str, ...]:
    """The MADLAD language forms (without ``<2`` ``>``) that may stand for ``tag``, best first.

    The tag as written (``-`` → ``_``), then language + script, then the bare language when the
    tag's script is that language's usual one (``zh-Hant`` never falls back to ``zh``).
    """
    cleaned = tag.strip().replace("_", "-")
    lowered = cleaned.lower()
    if lowered in _MADLAD_ALIASES:
        return _MADLAD_ALIASES[lowered]
    language, script, likely = _parse(lowered)
    forms = [cleaned.replace("-", "_")]
    if script:
        forms.append(f"{language}_{script.title()}")
    default_script = _parse(language)[2]
    if not script or script.title() == default_script:
        if likely == default_script or not default_script:
            forms.append(language)
    unique: list[str] = []
    for form in forms:
        if form and form not in unique:
            unique.append(form)
    return tuple(unique)


def bcp47_from_madlad(token: str) -> str | None:
    """``<2so>`` → ``so``, ``<2zh_Hant>`` → ``zh-Hant``; ``None`` for other tokens."""
    if not (token.startswith("<2") and token.endswith(">")) or len(token) < 5:
        return None
    return token[2:-1].replace("_", "-")


def same_language(tag: str, code: str) -> bool:
    """Whether the BCP 47 ``tag`` and a model's language ``code`` (``en``, ``swe``, ``zh``)
    name the same language in the same script."""
    a_language, a_script, a_likely = _parse(tag.replace("_", "-").lower())
    b_language, b_script, b_likely = _parse(code.replace("_", "-").lower())
    if a_language != b_language:
        return False
    return (a_script or a_likely) == (b_script or b_likely)
