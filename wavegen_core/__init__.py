"""wavegen_core: the library behind the wavegen pipeline.

Importable without DVC or Prefect: it takes paths, arrays, tensors and validated
config objects, and knows nothing of the stage layout.
"""

__version__ = "0.1.0"
