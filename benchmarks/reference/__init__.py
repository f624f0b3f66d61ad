"""A straightforward reference implementation of the papers' pipeline, for benchmarks only.

It is written the way the public USmorph code does it -- one image at a time, explicit Python/NumPy loops
over rays and radii for the polar unfolding, one encoder call per image, scikit-learn clusterers with their
default settings -- so that galtaxa's speed-ups can be measured against it on the same data in the same run,
and so that the outputs can be checked to agree.

It is *not* part of the galtaxa package and must not be imported by it.

Differences from the papers' code, on purpose:

* the polar unfolding does **not** reproduce the negative-index wrap-around of their code (a ray leaving the
  image through the top or left edge reads pixels from the opposite side, because ``img[-3]`` is valid
  Python); samples outside the image get ``fill`` as in galtaxa, so the two outputs can be compared;
* the centre and the faintest pixel are searched inside the inscribed disk of the stamp (galtaxa's search
  region) and bilinear interpolation is used at half-pixel radial steps (the same grid as their 2x upsampling
  followed by unit steps), so the reference and galtaxa (``smooth_sigma=0, subpixel=False``) agree to float
  rounding;
* every random step is seeded.
"""

from .pipeline import (
    cluster_reference,
    condition_reference,
    encode_reference,
    polar_unfold_reference,
    read_reference,
    reduce_reference,
    vote_reference,
)

__all__ = ["read_reference", "condition_reference", "polar_unfold_reference", "encode_reference",
           "reduce_reference", "cluster_reference", "vote_reference"]
