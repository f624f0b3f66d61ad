"""Where the per-galaxy work of a stage runs: in this process, or as tasks on Dask workers.

:class:`~galtaxa.compute.runner.ChunkRunner` maps a function over chunks of galaxies (the config's ``compute:``
section); :func:`~galtaxa.compute.runner.finished_part` reads back a part a worker wrote.
"""

from .runner import LOCAL, PROCESSES, Chunk, ChunkRunner, check_scheduler, chunks_of, finished_part

__all__ = ["LOCAL", "PROCESSES", "Chunk", "ChunkRunner", "check_scheduler", "chunks_of", "finished_part"]
