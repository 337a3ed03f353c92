"""Named exceptions raised by the library. Only the CLI and the web layer turn them into messages."""


class PodarchiveError(Exception):
    """Base class for every error podarchive raises on purpose."""


class SourceError(PodarchiveError):
    """A SOURCE given to ingest is neither a URL, a readable feed file nor an OPML file."""


class FeedError(PodarchiveError):
    """A feed could not be fetched or parsed."""


class FeedFetchError(FeedError):
    """The feed could not be downloaded (network error, HTTP error status)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status when the server answered with an error


class FeedParseError(FeedError):
    """The bytes are not a feed we can read."""


class AudioError(PodarchiveError):
    """An episode's audio could not be downloaded or is not usable audio."""


class TranscriptFormatError(PodarchiveError):
    """A transcript file could not be parsed in the format it claims."""


class TranscriptFetchError(PodarchiveError):
    """A feed's transcript file could not be downloaded or read."""


class TranscriptionError(PodarchiveError):
    """Whisper failed on an audio file."""


class ModelLoadError(PodarchiveError):
    """A Whisper or embedding model could not be loaded."""


class NotFoundError(PodarchiveError):
    """The show, episode, transcript or person asked for is not in the archive."""


class SearchError(PodarchiveError):
    """A search could not be run (bad mode, bad date filter)."""


class ChaptersError(PodarchiveError):
    """A feed's chapters file could not be fetched or is not a Podcasting 2.0 chapters file."""


class StageError(PodarchiveError):
    """A pipeline stage failed for one episode; the cause is recorded in `stages`."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__(f"{stage}: {cause}")
        self.stage = stage
        self.cause = cause


class UntrustedURLError(PodarchiveError):
    """A feed named a URL the trust rules do not follow: another scheme, a local file, a private address."""


class FetchLimitError(PodarchiveError):
    """A download went past one of its limits."""


class ResponseTooLargeError(FetchLimitError):
    """A response (decoded) or a local file is larger than its cap."""


class FetchDeadlineError(FetchLimitError):
    """A request took longer than its overall deadline."""


class ProducerError(PodarchiveError):
    """A producer account, grant or API token could not be made, changed or found."""


class InvalidProducerNameError(ProducerError):
    """A producer name is empty, too long or holds control characters."""


class ProducerExistsError(ProducerError):
    """A producer with this name (in any letter case) already exists."""


class UnknownProducerError(ProducerError):
    """No producer has this name."""


class BadPasswordError(ProducerError):
    """A new password is empty or too long."""


class UnknownShowError(ProducerError, NotFoundError):
    """A grant names a show that is not in the archive."""


class UnknownTokenError(ProducerError):
    """The producer has no API token with this id."""


class SettingError(PodarchiveError):
    """A PODARCHIVE_* environment variable holds a value its setting cannot take (archive/settings.py)."""


class SecretKeyError(PodarchiveError):
    """The site's secret key file beside the archive could not be made or read."""


class StudioError(PodarchiveError):
    """An episode could not be written, published or restored in the studio."""


class ValidationError(StudioError):
    """A value a producer gave is not acceptable; `field` names the editable field (or "field[i].part")."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotEditableError(StudioError):
    """A change names something the studio does not edit (a feed's guid, a duration), or a revision of another
    episode."""


class UploadError(PodarchiveError):
    """An uploaded file could not be stored: it is empty, not audio, or could not be written."""


class UploadTooLargeError(UploadError):
    """An upload went past its size cap; nothing of it was kept."""


class CorrectionError(PodarchiveError):
    """A transcript correction could not be made or undone: an empty line, text not found, a line changed since
    the correction to undo, a correction that lapsed."""


class ArtworkError(PodarchiveError):
    """A feed's artwork could not be fetched, or is not an image the archive will keep."""
