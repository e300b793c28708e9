"""MusiLingo: ask questions about music audio and get captions and answers in plain language.

A frozen music encoder turns audio into frames, a small trained projector maps pooled frames into
the input-embedding space of a frozen causal LLM, and the LLM writes the text. The public entry
point is :class:`musilingo.model.MusiLingo`; heavy parts are imported lazily so that
``import musilingo`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["MusiLingo", "__version__"]


def __getattr__(name: str):
    if name == "MusiLingo":
        from musilingo.model import MusiLingo

        return MusiLingo
    raise AttributeError(name)
