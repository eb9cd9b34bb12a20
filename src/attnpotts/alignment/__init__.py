"""Multiple sequence alignments: readers/writers, sequence weights, structures -> distances.

No torch here (numpy, numba and gemmi only).
"""

from .examples import EXAMPLES, ExampleFiles, example_files
from .io import (
    FORMATS,
    RawAlignment,
    detect_format,
    encode_alignment,
    parse_alignment,
    read_alignment,
    read_raw_alignment,
    write_a2m,
    write_fasta,
)
from .msa import MIN_NEFF_PER_SITE, MultipleSequenceAlignment, ReferenceSequence, data_warnings
from .structure import (
    DISTANCE_KINDS,
    ChainStructure,
    ColumnMapping,
    DistanceTable,
    StructureDistances,
    align_sequences,
    contact_map,
    distance_maps,
    map_reference,
    read_distance_table,
    read_distances,
    read_structure,
    structure_distances,
    write_distance_table,
)
from .weights import (
    DEFAULT_THRESHOLD,
    SequenceWeights,
    min_matches,
    neighbour_counts,
    neighbour_leaders,
    sequence_weights,
    unique_rows,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "DISTANCE_KINDS",
    "EXAMPLES",
    "FORMATS",
    "MIN_NEFF_PER_SITE",
    "ChainStructure",
    "ColumnMapping",
    "DistanceTable",
    "ExampleFiles",
    "MultipleSequenceAlignment",
    "RawAlignment",
    "ReferenceSequence",
    "SequenceWeights",
    "StructureDistances",
    "align_sequences",
    "contact_map",
    "data_warnings",
    "detect_format",
    "distance_maps",
    "encode_alignment",
    "example_files",
    "map_reference",
    "min_matches",
    "neighbour_counts",
    "neighbour_leaders",
    "parse_alignment",
    "read_alignment",
    "read_distance_table",
    "read_distances",
    "read_raw_alignment",
    "read_structure",
    "sequence_weights",
    "structure_distances",
    "unique_rows",
    "write_a2m",
    "write_distance_table",
    "write_fasta",
]
