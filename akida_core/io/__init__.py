"""Files: the `.fbz` container (`fbz`: versioned, checksummed, validated before anything is built)
and its error taxonomy (`fbz_errors`). What a model tree means is `akida_core.model`'s concern."""
from . import fbz  # noqa: F401
