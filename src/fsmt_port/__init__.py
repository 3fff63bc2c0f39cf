"""fsmt_port: fairseq WMT19-style transformer translation without fairseq.

Convert a fairseq checkpoint (``python -m fsmt_port.fairseq.convert``), then::

    from fsmt_port import FSMTForConditionalGeneration, FSMTTokenizer
    tok = FSMTTokenizer.from_pretrained("wmt19-en-de")   # a converted folder, or a hub id: facebook/wmt19-en-de
    model = FSMTForConditionalGeneration.from_pretrained("wmt19-en-de")
    batch = tok(["Machine learning is great!"], return_tensors="pt")
    out = model.generate(**batch, num_beams=5)
    print(tok.batch_decode(out, skip_special_tokens=True))
"""

from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.errors import FSMTPortError
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.modeling.model import FSMTForConditionalGeneration
from fsmt_port.tokenization.tokenizer import FSMTTokenizer
from fsmt_port.translation.translator import Translator
from fsmt_port.scoring.language_model import LanguageModel

__version__ = "0.1.0"
__all__ = ["FSMTConfig", "FSMTForConditionalGeneration", "FSMTPortError", "FSMTTokenizer", "GenerationConfig",
           "LanguageModel", "Translator", "__version__"]
