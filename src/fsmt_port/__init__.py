"""fsmt_port: fairseq WMT19-style transformer translation without fairseq.

Convert a fairseq checkpoint (``python -m fsmt_port.convert``), then::

    from fsmt_port import FSMTForConditionalGeneration, FSMTTokenizer
    tok = FSMTTokenizer.from_pretrained("wmt19-en-de")
    model = FSMTForConditionalGeneration.from_pretrained("wmt19-en-de")
    batch = tok(["Machine learning is great!"])
    out = model.generate(**batch, num_beams=5)
    print(tok.batch_decode(out))
"""

from .configuration import FSMTConfig
from .errors import FSMTPortError
from .generation_config import GenerationConfig
from .modeling_fsmt import FSMTForConditionalGeneration
from .tokenizer import FSMTTokenizer
from .translator import Translator

__version__ = "0.1.0"
__all__ = ["FSMTConfig", "FSMTForConditionalGeneration", "FSMTPortError", "FSMTTokenizer", "GenerationConfig",
           "Translator", "__version__"]
