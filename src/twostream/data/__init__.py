"""Data: split files (``splits``), pure index functions (``sampling``), array transforms
(``transforms``) and the torch Datasets of both streams (``datasets``)."""
