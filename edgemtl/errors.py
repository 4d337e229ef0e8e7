"""The exceptions edgemtl raises for bad input.

Every message is one line that names the offending thing and what was expected, so the CLI can
print it as-is and an integrator can log it without a traceback. Pure Python: the runtime uses it.
"""


class EdgemtlError(Exception):
    """Base class of every error caused by input edgemtl was given (paths, files, frames, options)."""


class ConfigError(EdgemtlError):
    """An option, preset, task description or other setting is not one edgemtl knows."""


class DataError(EdgemtlError):
    """A dataset is missing files, has mismatched sizes, or has labels out of range."""


class CheckpointError(EdgemtlError):
    """A checkpoint is missing, corrupt, or from an incompatible format version."""


class ModelFileError(EdgemtlError):
    """An .onnx file is missing, unreadable, not ONNX, or not an edgemtl export."""


class ForeignModelError(ModelFileError):
    """A valid ONNX file that edgemtl did not export (no edgemtl metadata): usable, but not by the Engine."""


class FrameError(EdgemtlError):
    """A frame given to the runtime has the wrong shape or dtype."""


class FeatureError(FrameError):
    """Feature vectors given to the runtime have the wrong count, shape or dtype, or hold a NaN."""


class DeviceError(EdgemtlError):
    """The requested execution device (e.g. CUDA) cannot be used."""


class ParityError(DeviceError):
    """A backend other than ONNX Runtime on the CPU gives a file's outputs differently: it does not serve it."""


class ExportError(EdgemtlError):
    """An export could not be written or failed its verification against PyTorch."""


class SourceError(EdgemtlError):
    """A frame source (image, folder, video, camera, stream) cannot be opened or read."""


class OutputError(EdgemtlError):
    """An output path cannot be written, or would overwrite something without permission."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (`docker stop`, systemd, Kubernetes): raised where Ctrl-C would be, so every `with`
    block and `except KeyboardInterrupt` that finalizes outputs on Ctrl-C does the same on SIGTERM.

    Not an EdgemtlError: nothing was wrong with the input. The CLI exits with 143 (128 + SIGTERM).
    """
