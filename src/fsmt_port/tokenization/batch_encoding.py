"""What calling the tokenizer returns: a dict with attribute access, as transformers' ``BatchEncoding``.

So code written for transformers runs unchanged: ``batch.input_ids``, ``batch.to(device)`` and
``model.generate(**batch)`` all work.
"""

from __future__ import annotations


class BatchEncoding(dict):
    """``input_ids`` and ``attention_mask``: lists, or tensors/arrays when ``return_tensors`` was given."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device) -> "BatchEncoding":
        """Move torch tensors to ``device`` (lists and numpy arrays stay as they are)."""
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") and not isinstance(v, list) else v
                              for k, v in self.items()})
