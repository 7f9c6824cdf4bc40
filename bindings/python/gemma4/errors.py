# errors.py: one exception class per gemma4 status code.
#
# Every failed C call becomes a Gemma4Error (or a subclass) carrying .status (the integer code),
# .name ("GEMMA4_ERR_CONTEXT_FULL") and .message (gemma4_last_error() of the failing thread).
# Subclasses also derive from the closest built-in exception, so `except ValueError` works for
# bad arguments and `except OSError` for a missing checkpoint.
from . import _lib


class Gemma4Error(Exception):
    status = None

    def __init__(self, status, name, message):
        super().__init__("%s: %s" % (name, message) if message else name)
        self.status = status
        self.name = name
        self.message = message


class InvalidArgumentError(Gemma4Error, ValueError): pass
class IoError(Gemma4Error, OSError): pass
class FormatError(Gemma4Error): pass
class UnsupportedError(Gemma4Error): pass
class OutOfMemoryError(Gemma4Error, MemoryError): pass
class DeviceError(Gemma4Error): pass
class ContextFullError(Gemma4Error): pass
class BufferTooSmallError(Gemma4Error): pass
class InternalError(Gemma4Error): pass
class InvalidTokenError(Gemma4Error, ValueError): pass
class CancelledError(Gemma4Error): pass
class ConfigError(Gemma4Error): pass
class NoTokenizerError(Gemma4Error): pass
class BusyError(Gemma4Error): pass


BY_STATUS = {
    _lib.ERR_INVALID_ARGUMENT: InvalidArgumentError,
    _lib.ERR_IO: IoError,
    _lib.ERR_FORMAT: FormatError,
    _lib.ERR_UNSUPPORTED: UnsupportedError,
    _lib.ERR_OUT_OF_MEMORY: OutOfMemoryError,
    _lib.ERR_DEVICE: DeviceError,
    _lib.ERR_CONTEXT_FULL: ContextFullError,
    _lib.ERR_BUFFER_TOO_SMALL: BufferTooSmallError,
    _lib.ERR_INTERNAL: InternalError,
    _lib.ERR_INVALID_TOKEN: InvalidTokenError,
    _lib.ERR_CANCELLED: CancelledError,
    _lib.ERR_CONFIG: ConfigError,
    _lib.ERR_NO_TOKENIZER: NoTokenizerError,
    _lib.ERR_BUSY: BusyError,
}

for _status, _cls in BY_STATUS.items():
    _cls.status = _status


def make_error(status, message=None):
    """The exception for status; message defaults to gemma4_last_error() of *this* thread, so
    call it on the thread that made the failing call, before any other gemma4 call."""
    if message is None:
        message = _lib.lib.gemma4_last_error().decode("utf-8", "replace")
    name = _lib.lib.gemma4_status_name(status).decode("ascii", "replace")
    return BY_STATUS.get(status, Gemma4Error)(status, name, message)


def check(status):
    """Raises the matching Gemma4Error unless status is GEMMA4_OK."""
    if status != _lib.OK:
        raise make_error(status)
