"""wavegen_core: the library behind the wavegen pipeline.

Importable without DVC or Prefect: it takes paths, arrays, tensors and validated
config objects, and knows nothing of the stage layout.
"""

import contextlib
import io

__version__ = "0.1.0"

# pyfluidsynth, which pretty_midi imports, prints where it found libfluidsynth on stdout
# whenever the environment sets CI: a line in every command's output, `wavegen exps`'
# table among them. Imported here once with its stdout set aside.
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(ImportError, OSError):
    import fluidsynth  # noqa: F401
