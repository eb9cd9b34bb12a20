"""One definition of a command's options: typed dataclass fields with their metadata.

A command's options are a frozen dataclass whose fields are declared with :func:`option` (or the
short forms :func:`integer`, :func:`number`, :func:`boolean`, :func:`choice`, :func:`text`,
:func:`number_list`). Each field carries its kind, range or choices, default, help text, flag,
group and old spellings (deprecated aliases). From that one definition come

* validation (:func:`validate`, :func:`check_value`): type, range and choice, with no silent
  coercion (``"false"`` is not a boolean, ``1.5`` is not an epoch count, ``"Protein"`` is not
  ``"protein"``, ``"0.01"`` is not a number) and the same message whether the value came from a
  flag, a TOML key or Python;
* the command-line flags and their ``--help`` text (:func:`add_arguments`);
* the TOML keys of ``--config`` files (the field names; :func:`from_sources`).

Adding an option is adding one field. This unit imports nothing of attnpotts but the errors, so
that every layer's configuration classes can use it.
"""

from .common import DEFAULT_MEMORY_LIMIT_GB, memory_limit, thread_count
from .sources import Resolved, add_arguments, from_sources
from .spec import (
    Kind,
    OptionSpec,
    boolean,
    check_value,
    choice,
    defaults,
    integer,
    number,
    number_list,
    option,
    option_specs,
    text,
    validate,
)

__all__ = [
    "DEFAULT_MEMORY_LIMIT_GB",
    "Kind",
    "OptionSpec",
    "Resolved",
    "add_arguments",
    "boolean",
    "check_value",
    "choice",
    "defaults",
    "from_sources",
    "integer",
    "memory_limit",
    "number",
    "number_list",
    "option",
    "option_specs",
    "text",
    "thread_count",
    "validate",
]
