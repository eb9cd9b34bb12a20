"""Read and write multiple sequence alignments: FASTA (plain or gzipped), A2M, A3M, Stockholm, PSICOV.

Conventions (those of HMMER/HH-suite, plmc and CCMpred):

* upper-case letters and the gap ``-`` are match columns; lower-case letters and ``.`` are
  insertions and are dropped (``insertions="drop"``; ``"keep"`` upper-cases them instead, for
  files that use lower case for ordinary residues);
* A2M and A3M differ only in whether insertions are padded with ``.``: both read the same way,
  and after dropping insertions every sequence must have the same number of match columns;
* a file without any lower-case letter, with rows of equal length and a ``.`` in a column that
  other rows fill with residues or ``-``, uses ``.`` as a gap (Clustal or Jalview exports): it is
  read so, with a warning;
* the record id is the first word of the header; a suffix ``/START-END`` gives the number of the
  first residue of the reference sequence (used for ``residue_numbers``);
* gzip is detected from the file's first bytes, whatever its name.

Every malformed file raises :class:`~attnpotts.errors.DataFormatError` naming the file and line.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..alphabet import PROTEIN, Alphabet
from ..errors import DataFormatError, ValidationError
from ..storage import atomic_write_bytes, check_input_file, read_bounded
from .msa import MultipleSequenceAlignment, ReferenceSequence

__all__ = [
    "FORMATS",
    "MAX_ALIGNMENT_BYTES",
    "RawAlignment",
    "check_input_file",
    "detect_format",
    "encode_alignment",
    "parse_alignment",
    "read_alignment",
    "read_bounded",
    "read_raw_alignment",
    "write_a2m",
    "write_fasta",
]

AlignmentFormat = Literal["fasta", "a2m", "a3m", "stockholm", "psicov"]
#: Formats understood by :func:`read_alignment`.
FORMATS: tuple[str, ...] = ("fasta", "a2m", "a3m", "stockholm", "psicov")

_EXTENSIONS = {
    ".fasta": "fasta",
    ".fa": "fasta",
    ".fas": "fasta",
    ".faa": "fasta",
    ".afa": "fasta",
    ".mfa": "fasta",
    ".a2m": "a2m",
    ".a3m": "a3m",
    ".sto": "stockholm",
    ".stk": "stockholm",
    ".sth": "stockholm",
    ".stockholm": "stockholm",
    ".aln": "psicov",
    ".psicov": "psicov",
}
_GZIP_MAGIC = b"\x1f\x8b"
#: Largest alignment read (bytes of text, after decompression): a bound against gzip bombs and
#: endless inputs; pass ``max_bytes`` to :func:`read_alignment` for larger files.
MAX_ALIGNMENT_BYTES = 4 * 1024**3
#: Control characters (other than tab, CR, LF) never belong in an alignment, header or not.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_REGION = re.compile(r"/(\d+)-(\d+)$")
_INSERT_GAP = "."
logger = logging.getLogger(__name__)
#: str.translate table deleting insertions (lower case letters and '.').
_DROP_INSERTIONS = {ord(c): None for c in "abcdefghijklmnopqrstuvwxyz."}


@dataclass(frozen=True)
class RawAlignment:
    """Records of an alignment file before encoding.

    Attributes:
        ids: record identifiers.
        descriptions: header text after the identifier ("" if none).
        rows: aligned strings as in the file (insertions included).
        lines: 1-based line number where each record starts (for error messages).
        format: the format that was parsed.
        source: the file name (or ``"<string>"``).
    """

    ids: tuple[str, ...]
    descriptions: tuple[str, ...]
    rows: tuple[str, ...]
    lines: tuple[int, ...]
    format: str
    source: str


# ------------------------------------------------------------------------------------ detection
class _BoundedReader(io.RawIOBase):
    """A binary stream that raises :class:`DataFormatError` after ``limit`` bytes (gzip bombs)."""

    def __init__(self, raw: io.BufferedIOBase | gzip.GzipFile, limit: int, path: Path) -> None:
        self._raw, self._left, self._limit, self._path = raw, limit, limit, path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)
        self._left -= n
        if self._left < 0:
            raise DataFormatError(
                f"more than {self._limit} bytes of text (after decompression); too large for an "
                "alignment read at once (pass max_bytes to read it anyway)",
                path=self._path,
            )
        return int(n)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_text(path: Path, max_bytes: int = MAX_ALIGNMENT_BYTES) -> io.TextIOBase:
    path = check_input_file(path, "an alignment file")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    raw: io.BufferedIOBase | gzip.GzipFile
    raw = gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")  # noqa: SIM115
    stream = io.BufferedReader(_BoundedReader(raw, max_bytes, path))
    return io.TextIOWrapper(stream, encoding="ascii", errors="strict")


def detect_format(path: str | os.PathLike[str], text: str | None = None) -> str:
    """Guess the format of an alignment file from its extension, then from its first line.

    Extensions (after an optional ``.gz``): ``.fasta .fa .fas .faa .afa .mfa`` (FASTA), ``.a2m``,
    ``.a3m``, ``.sto .stk .sth .stockholm``, ``.aln .psicov``. Otherwise: a first line
    ``# STOCKHOLM`` means Stockholm, ``>`` FASTA, anything else PSICOV (one sequence per line).

    Raises:
        DataFormatError: the file is empty or is a Clustal file (not supported).
    """
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    first = _first_line(p) if text is None else _first_nonblank(text.splitlines())
    if first is not None and first.upper().startswith("CLUSTAL"):
        raise DataFormatError(
            "Clustal format is not supported; convert it to FASTA (e.g. with Biopython "
            "AlignIO or `esl-reformat afa`)",
            path=p,
            line=1,
        )
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    if first is None:
        raise DataFormatError("file is empty: no alignment to read", path=p)
    if first.startswith("# STOCKHOLM"):
        return "stockholm"
    if first.startswith(">"):
        return "fasta"
    return "psicov"


def _first_nonblank(lines: Iterable[str]) -> str | None:
    for line in lines:
        if line.strip():
            return line.strip()
    return None


def _first_line(path: Path) -> str | None:
    try:
        with _open_text(path) as fh:
            return _first_nonblank(fh)
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not an ASCII text file ({exc})", path=path) from exc
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"corrupt gzip file ({exc})", path=path) from exc


# ------------------------------------------------------------------------------------- parsing
def _allowed_characters(alphabet: Alphabet) -> frozenset[str]:
    """Characters a row may contain: the alphabet (either case), its aliases, ``-`` and ``.``."""
    allowed = set(alphabet.symbols) | set(alphabet.aliases) | {"-", _INSERT_GAP}
    allowed |= {c.lower() for c in alphabet.symbols if c.isalpha()}
    if alphabet.unknown == "gap":
        allowed |= {chr(c) for c in range(ord("A"), ord("Z") + 1)}
        allowed |= {chr(c) for c in range(ord("a"), ord("z") + 1)}
    return frozenset(allowed)


def _check_chars(
    text: str, allowed: frozenset[str], source: str, line: int, offset: int = 0
) -> None:
    bad = set(text) - allowed
    if bad:
        col = min(text.index(c) for c in bad)
        raise DataFormatError(
            f"character {text[col]!r} at position {col + 1 + offset} is not a residue, gap or "
            "insertion of the alphabet; fix the file or read it with another alphabet "
            "(e.g. an Alphabet with unknown='gap')",
            path=source,
            line=line,
        )


def _check_control(line: str, source: str, n: int) -> None:
    m = _CONTROL.search(line)
    if m is not None:
        raise DataFormatError(
            f"control character {m.group()!r} at position {m.start() + 1}; an alignment is "
            "printable text (is this a binary file?)",
            path=source,
            line=n,
        )


def _check_unique(ids: Sequence[str], starts: Sequence[int], source: str) -> None:
    first: dict[str, int] = {}
    for ident, line in zip(ids, starts, strict=True):
        if ident in first:
            raise DataFormatError(
                f"record id {ident!r} appears twice (lines {first[ident]} and {line}); ids must "
                "be unique (e.g. NAME/START-END): rename or remove one",
                path=source,
                line=line,
            )
        first[ident] = line


def _split_header(header: str) -> tuple[str, str]:
    parts = header.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def _parse_fasta(
    lines: Iterable[str], source: str, allowed: frozenset[str], fmt: str
) -> RawAlignment:
    ids: list[str] = []
    descs: list[str] = []
    rows: list[str] = []
    starts: list[int] = []
    chunks: list[str] = []
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        _check_control(line, source, n)
        if line.startswith(">"):
            if ids and not chunks:
                raise DataFormatError(
                    f"record {ids[-1]!r} has no sequence", path=source, line=starts[-1]
                )
            if ids:
                rows.append("".join(chunks))
            ident, desc = _split_header(line[1:])
            if not ident:
                raise DataFormatError("header line '>' without an identifier", path=source, line=n)
            ids.append(ident)
            descs.append(desc)
            starts.append(n)
            chunks = []
        elif line.startswith(";") or (line.startswith("#") and not ids):
            continue  # comment lines (old FASTA; '#' comments before the first record)
        else:
            if not ids:
                raise DataFormatError(
                    "sequence data before the first '>' header; a FASTA/A2M/A3M record starts "
                    "with '>ID'",
                    path=source,
                    line=n,
                )
            _check_chars(line, allowed, source, n)
            chunks.append(line)
    if ids:
        if not chunks:
            raise DataFormatError(
                f"record {ids[-1]!r} has no sequence", path=source, line=starts[-1]
            )
        rows.append("".join(chunks))
    if not ids:
        raise DataFormatError("no '>' record found: not a FASTA/A2M/A3M file", path=source)
    _check_unique(ids, starts, source)
    return RawAlignment(tuple(ids), tuple(descs), tuple(rows), tuple(starts), fmt, source)


def _parse_stockholm(lines: Iterable[str], source: str, allowed: frozenset[str]) -> RawAlignment:
    seqs: dict[str, list[str]] = {}
    starts: dict[str, int] = {}
    in_block: dict[str, int] = {}  # names of the current block of an interleaved file -> line
    header_seen = False
    ended = False
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        _check_control(line, source, n)
        if not header_seen:
            if not stripped:
                continue
            if not stripped.startswith("# STOCKHOLM"):
                raise DataFormatError(
                    "a Stockholm file must start with '# STOCKHOLM 1.0'", path=source, line=n
                )
            header_seen = True
            continue
        if ended:
            if stripped:
                raise DataFormatError(
                    "text after the '//' that ends the alignment (a second alignment?); a "
                    "Stockholm file given to attnpotts must hold one alignment: split the file",
                    path=source,
                    line=n,
                )
            continue
        if not stripped:
            in_block = {}  # a blank line separates the blocks of an interleaved alignment
            continue
        if stripped.startswith("#"):
            continue  # #=GF/#=GS/#=GR/#=GC annotation
        if stripped == "//":
            ended = True
            continue
        parts = stripped.split()
        if len(parts) != 2:
            raise DataFormatError(
                f"expected 'NAME SEQUENCE' (two fields), got {len(parts)} field(s)",
                path=source,
                line=n,
            )
        name, seq = parts
        _check_chars(seq, allowed, source, n)
        if name in in_block:
            raise DataFormatError(
                f"sequence name {name!r} appears twice in one block (lines {in_block[name]} and "
                f"{n}); names must be unique: rename or remove one",
                path=source,
                line=n,
            )
        in_block[name] = n
        if name not in seqs:
            seqs[name] = []
            starts[name] = n
        seqs[name].append(seq)
    if not header_seen:
        raise DataFormatError("file is empty: no '# STOCKHOLM 1.0' header", path=source)
    if not ended:
        raise DataFormatError("missing the '//' line that ends a Stockholm alignment", path=source)
    if not seqs:
        raise DataFormatError("the Stockholm alignment has no sequences", path=source)
    ids = tuple(seqs)
    return RawAlignment(
        ids,
        tuple("" for _ in ids),
        tuple("".join(seqs[k]) for k in ids),
        tuple(starts[k] for k in ids),
        "stockholm",
        source,
    )


def _parse_psicov(lines: Iterable[str], source: str, allowed: frozenset[str]) -> RawAlignment:
    rows: list[str] = []
    starts: list[int] = []
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        _check_control(line, source, n)
        if line.startswith(">"):
            raise DataFormatError(
                "a PSICOV .aln file has one sequence per line and no headers; this looks like "
                "FASTA: pass format='fasta'",
                path=source,
                line=n,
            )
        _check_chars(line, allowed, source, n)
        rows.append(line)
        starts.append(n)
    if not rows:
        raise DataFormatError("file is empty: no sequences", path=source)
    ids = tuple(str(k + 1) for k in range(len(rows)))
    return RawAlignment(ids, tuple("" for _ in ids), tuple(rows), tuple(starts), "psicov", source)


def parse_alignment(
    lines: Iterable[str],
    format: str,
    *,
    alphabet: Alphabet = PROTEIN,
    source: str = "<string>",
) -> RawAlignment:
    """Parse the lines of an alignment in ``format`` (one of :data:`FORMATS`) into raw records."""
    fmt = _check_format(format)
    allowed = _allowed_characters(alphabet)
    if fmt in ("fasta", "a2m", "a3m"):
        return _parse_fasta(lines, source, allowed, fmt)
    if fmt == "stockholm":
        return _parse_stockholm(lines, source, allowed)
    return _parse_psicov(lines, source, allowed)


def _check_format(format: str) -> str:
    fmt = format.lower()
    if fmt == "fa":
        fmt = "fasta"
    if fmt not in FORMATS:
        raise ValidationError(f"unknown alignment format {format!r}; choose one of {FORMATS}")
    return fmt


def read_raw_alignment(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    alphabet: Alphabet = PROTEIN,
    max_bytes: int = MAX_ALIGNMENT_BYTES,
) -> RawAlignment:
    """Read the records of an alignment file without encoding them (see :func:`read_alignment`).

    At most ``max_bytes`` of text are read (after decompression).
    """
    p = check_input_file(path, "an alignment file")
    fmt = _check_format(format) if format is not None else detect_format(p)
    try:
        with _open_text(p, max_bytes) as fh:
            return parse_alignment(fh, fmt, alphabet=alphabet, source=str(p))
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"not an ASCII text file (byte {exc.object[exc.start:exc.start + 1]!r}); alignments "
            "are ASCII",
            path=p,
        ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"corrupt or truncated gzip file ({exc})", path=p) from exc


# ------------------------------------------------------------------------------------ encoding
def _match_columns(row: str, insertions: str) -> str:
    if insertions == "keep":
        return row.replace(_INSERT_GAP, "-").upper()
    # drop lower case letters and '.', keep upper case and every other symbol
    return row.translate(_DROP_INSERTIONS)


def _dots_are_gaps(raw: RawAlignment) -> bool:
    """Whether ``.`` can only be a gap: no lower-case letter anywhere, rows of equal length, and a
    ``.`` in a column where another row has a match character.

    A2M and Stockholm files mark insertions by lower-case residues in columns of their own,
    padded with ``.``; a ``.`` beside an upper-case residue or ``-`` of another row is not such
    padding but a gap (Clustal or Jalview exports, some Stockholm files).
    """
    n = len(raw.rows[0])
    if not any(_INSERT_GAP in r for r in raw.rows) or any(
        len(r) != n or any(c.islower() for c in r) for r in raw.rows
    ):
        return False
    dots = np.frombuffer("".join(raw.rows).encode("ascii", "replace"), dtype=np.uint8).reshape(-1, n) == ord(_INSERT_GAP)
    return bool((dots.any(axis=0) & ~dots.all(axis=0)).any())


def _reference_index(raw: RawAlignment, reference: str | int | None) -> int:
    if reference is None:
        return 0
    if isinstance(reference, bool) or not isinstance(reference, int | str):
        raise ValidationError(
            f"reference must be an id (str) or a row index (int), got {reference!r}"
        )
    if isinstance(reference, int):
        if not 0 <= reference < len(raw.ids):
            raise ValidationError(
                f"reference row {reference} is out of range: the alignment has {len(raw.ids)} "
                "records (rows are numbered from 0)"
            )
        return reference
    if reference in raw.ids:
        return raw.ids.index(reference)
    # plmc convention: the focus id may be a prefix of the record id (e.g. without /START-END)
    hits = [k for k, i in enumerate(raw.ids) if i.startswith(reference)]
    if not hits:
        raise ValidationError(
            f"reference {reference!r} is not an id (or id prefix) of {raw.source}; "
            f"the first ids are {list(raw.ids[:3])}"
        )
    if len(hits) > 1:
        raise ValidationError(
            f"reference {reference!r} is a prefix of {len(hits)} ids "
            f"({[raw.ids[k] for k in hits[:3]]}...); give the full id"
        )
    return hits[0]


def _reference_info(
    raw: RawAlignment, row: int, matched: str, insertions: str, alphabet: Alphabet
) -> ReferenceSequence:
    ident = raw.ids[row]
    m = _REGION.search(ident)
    start = int(m.group(1)) if m else 1
    numbers = np.full(len(matched), -1, dtype=np.int64)
    number = start - 1
    col = 0
    for c in raw.rows[row]:
        is_insert = insertions == "drop" and (c.islower() or c == _INSERT_GAP)
        is_residue = c.isalpha()
        if is_residue:
            number += 1
        if is_insert:
            continue
        if is_residue and alphabet.gap is not None and c.upper() != alphabet.gap:
            numbers[col] = number
        col += 1
    gap = alphabet.gap if alphabet.gap is not None else "-"
    states = alphabet.encode([matched], source=raw.source)[0]
    residues = "".join(
        gap if (alphabet.gap_index is not None and s == alphabet.gap_index) else alphabet.symbols[s]
        for s in states
    )
    numbers[[ch == gap for ch in residues]] = -1
    return ReferenceSequence(
        id=ident, row=row, residues=residues, residue_numbers=numbers, start=start
    )


def encode_alignment(
    raw: RawAlignment,
    *,
    alphabet: Alphabet = PROTEIN,
    insertions: Literal["drop", "keep"] = "drop",
    reference: str | int | None = None,
) -> MultipleSequenceAlignment:
    """Encode raw records: drop insertions, check equal widths, record the reference sequence."""
    if insertions not in ("drop", "keep"):
        raise ValidationError(f"insertions must be 'drop' or 'keep', got {insertions!r}")
    matched = [_match_columns(r, insertions) for r in raw.rows]
    width = len(matched[0])
    if insertions == "drop" and _dots_are_gaps(raw):
        logger.warning(
            "%s: '.' read as a gap: the file has no lower-case insertions, and its '.' stand in "
            "columns that other rows fill with residues or '-' (not A2M insert columns)", raw.source
        )
        matched = [r.replace(_INSERT_GAP, "-") for r in raw.rows]
        width = len(matched[0])
        insertions = "keep"  # what this reading is (no lower case to upper-case): for the reference
    for k, m in enumerate(matched):
        if len(m) != width:
            dots = " ('.' and lower case are insertions and are dropped)" if any(
                _INSERT_GAP in r for r in raw.rows) else ""
            raise DataFormatError(
                f"record {raw.ids[k]!r} has {len(m)} match columns (upper case and '-'), the "
                f"first record has {width}; aligned sequences must all have the same number of "
                f"match columns{dots}",
                path=raw.source,
                line=raw.lines[k],
            )
    if width == 0:
        raise DataFormatError(
            "no match columns: every character is lower case or '.', i.e. an insertion; if this "
            "file uses lower case for ordinary residues read it with insertions='keep'",
            path=raw.source,
            line=raw.lines[0],
        )
    states = alphabet.encode(matched, source=raw.source)
    ref_row = _reference_index(raw, reference)
    ref = _reference_info(raw, ref_row, matched[ref_row], insertions, alphabet)
    n = len(matched)
    return MultipleSequenceAlignment(
        ids=raw.ids,
        states=states,
        alphabet=alphabet,
        column_map=np.arange(width, dtype=np.int64),
        n_original_columns=width,
        row_map=np.arange(n, dtype=np.int64),
        reference=ref,
        descriptions=raw.descriptions,
        source=raw.source,
    )


def read_alignment(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    alphabet: Alphabet = PROTEIN,
    insertions: Literal["drop", "keep"] = "drop",
    reference: str | int | None = None,
    focus: bool = False,
    max_column_gap: float | None = None,
    max_sequence_gap: float | None = None,
) -> MultipleSequenceAlignment:
    """Read and encode an alignment file.

    Args:
        path: FASTA (``.gz`` too), A2M, A3M, Stockholm or PSICOV file.
        format: one of :data:`FORMATS`; by default detected (:func:`detect_format`).
        alphabet: ``attnpotts.alphabet.PROTEIN`` (20 amino acids + gap, unknown letters read as
            gaps), ``RNA`` or any :class:`~attnpotts.alphabet.Alphabet`.
        insertions: ``"drop"`` lower case letters and ``.`` (A2M/A3M insertions), or ``"keep"``
            them as ordinary residues/gaps.
        reference: id (or unique id prefix, as plmc's ``--focus``) or 0-based row of the reference
            sequence; the first record by default.
        focus: keep only the columns where the reference has a residue (plmc's focus mode).
        max_column_gap: then drop columns with a larger gap fraction.
        max_sequence_gap: then drop sequences with a larger gap fraction (over the kept columns).

    Returns:
        The alignment; ``column_map`` maps its columns to the file's match columns.

    Raises:
        DataFormatError: the file is malformed (the message names the file and the line).
    """
    raw = read_raw_alignment(path, format=format, alphabet=alphabet)
    msa = encode_alignment(raw, alphabet=alphabet, insertions=insertions, reference=reference)
    if focus:
        msa = msa.focus()
    if max_column_gap is not None:
        msa = msa.filter_columns(max_column_gap)
    if max_sequence_gap is not None:
        msa = msa.filter_sequences(max_sequence_gap)
    return msa


# ------------------------------------------------------------------------------------- writing
def _records(
    alignment: MultipleSequenceAlignment | tuple[Sequence[str], Sequence[str]],
) -> Iterator[tuple[str, str]]:
    if isinstance(alignment, MultipleSequenceAlignment):
        descs = alignment.descriptions or ("",) * alignment.n_sequences
        heads = [f"{i} {d}".rstrip() for i, d in zip(alignment.ids, descs, strict=True)]
        yield from zip(heads, alignment.sequences(), strict=True)
        return
    ids, seqs = alignment
    if len(ids) != len(seqs):
        raise ValidationError(f"{len(ids)} headers for {len(seqs)} sequences")
    for h, s in zip(ids, seqs, strict=True):
        if not h or h != h.strip() or "\n" in h or not h.split():
            raise ValidationError(f"header {h!r} must be non-empty, on one line, not padded")
        if not s or any(c.isspace() for c in s):
            raise ValidationError(f"sequence of {h!r} must be non-empty and without whitespace")
        yield h, s


def _write(path: str | os.PathLike[str], text: str) -> Path:
    data = text.encode("ascii")
    p = Path(path)
    if p.suffix.lower() == ".gz":
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(p, data)


def write_fasta(
    path: str | os.PathLike[str],
    alignment: MultipleSequenceAlignment | tuple[Sequence[str], Sequence[str]],
    *,
    line_width: int | None = None,
) -> Path:
    """Write aligned FASTA (gzipped when ``path`` ends in ``.gz``), atomically.

    Args:
        alignment: an alignment (its kept columns, upper case) or ``(headers, sequences)``.
        line_width: wrap sequences at this width; one line per sequence by default.
    """
    if line_width is not None and line_width < 1:
        raise ValidationError(f"line_width must be >= 1, got {line_width}")
    out: list[str] = []
    for head, seq in _records(alignment):
        out.append(f">{head}\n")
        if line_width is None:
            out.append(seq + "\n")
        else:
            out.extend(seq[k : k + line_width] + "\n" for k in range(0, len(seq), line_width))
    return _write(path, "".join(out))


def write_a2m(
    path: str | os.PathLike[str],
    alignment: MultipleSequenceAlignment | tuple[Sequence[str], Sequence[str]],
) -> Path:
    """Write A2M: match columns upper case or ``-``, insertions lower case padded with ``.``.

    Raw ``(headers, sequences)`` must already be A2M rows (all of the same total length); an
    alignment object is written as its kept match columns.

    Raises:
        ValidationError: the rows do not have equal lengths.
    """
    records = list(_records(alignment))
    lengths = {len(s) for _, s in records}
    if len(lengths) > 1:
        raise ValidationError(
            f"A2M rows must all have the same length (insertions padded with '.'), got lengths "
            f"{sorted(lengths)[:5]}"
        )
    return _write(path, "".join(f">{h}\n{s}\n" for h, s in records))
