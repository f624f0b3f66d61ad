"""The fast engine's searches: radii bracketed from a binned profile, then Brent's method; scipy's Nelder-Mead.

statmorph brackets every radius (Petrosian, fractions of the light) by a 100-point scan and refines it with Brent's
method; here the scan's first crossing is read off a binned profile of the stamp (:class:`_Profile`) and checked
with the real function (:func:`_first_crossing`, :func:`_fraction_radius`).  :func:`nelder_mead` is
:func:`scipy.optimize.fmin` on Python floats (the asymmetry centre's search, the multimode statistic's
basin-hopping).  Used by :mod:`galtaxa.measure.fast_engine`.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize as opt

__all__ = ["nelder_mead"]


class _Profile:
    r"""Sums over concentric apertures at many radii at once, binned: for bracketing a radius, not measuring it.

    ``rho`` is each pixel's radius in the apertures' own norm (distance for circles, :math:`\rho` of
    :class:`_EllipseFamily` for ellipses); the sum of ``values`` within radius :math:`a` is the cumulative sum
    of 1/4 px bins, interpolated (a pixel counts when its centre is inside, photutils' ``center`` method).
    """

    def __init__(self, rho, values, area=None, width=0.25):
        self.width = width
        bins = (np.asarray(rho) / width).astype(np.int64).ravel()
        self.edges = width * np.arange(1, int(bins.max()) + 2)
        self.flux = np.cumsum(np.bincount(bins, weights=np.asarray(values, dtype=np.float64).ravel()))
        self.area = None if area is None else np.cumsum(np.bincount(bins, weights=np.asarray(
            area, dtype=np.float64).ravel(), minlength=self.flux.size))

    def sums(self, radii):
        return np.interp(radii, self.edges, self.flux, left=0.0)

    def areas(self, radii):
        return np.interp(radii, self.edges, self.area, left=0.0)


def _first_crossing(func, grid, approx, after, margin):
    """statmorph's scan for a radius: the first point of ``grid`` where ``after(func)`` holds, found from an
    approximation of ``func`` on the whole grid and checked with ``func``: at the approximation's first such
    point, at every earlier point where the approximation is within ``margin`` of zero (where its sign may be
    wrong), and, until they agree, at the points about the crossing.

    Returns ``(k, f)``: the index (``len(grid)`` when no point qualifies) and ``f(i)``, the exact values at the
    grid points (each computed once).
    """
    n = len(grid)
    approx = np.asarray(approx)
    hits = np.flatnonzero(after(approx))
    k = int(hits[0]) if hits.size else n
    values: dict = {}

    def f(i):
        if i not in values:
            values[i] = func(grid[i])
        return values[i]

    for j in np.flatnonzero(np.abs(approx[:k]) <= margin):
        if after(f(int(j))):
            k = int(j)
            break
    while k < n and not after(f(k)):
        k += 1
    while k > 0 and after(f(k - 1)):
        k -= 1
    return k, f


def _fraction_radius(func, grid, approx, xtol):
    """statmorph's radius holding a fraction of the light: the first grid point where ``func`` (light fraction
    minus the target) is positive brackets the root with the one before, then Brent's method."""
    k, f = _first_crossing(func, grid, approx, lambda v: np.asarray(v) > 0, margin=0.01)
    assert k < len(grid), "Root not found within range."
    return opt.brentq(func, grid[k - 1], grid[k], xtol=xtol)


def nelder_mead(func, x0, xtol=1e-4, ftol=1e-4, maxfun=None):
    """scipy's Nelder-Mead (:func:`scipy.optimize.fmin`) on Python floats: the same initial simplex, steps (its
    standard coefficients), order and stopping rule (``maxiter = maxfun = 200 N`` unless given), so the same
    path and minimum, without the per-step array overhead, a third of a small stamp's asymmetry search.

    Parameters
    ----------
    func : callable
        ``list of N floats -> float``.
    x0 : sequence of N floats
    xtol, ftol : float
        fmin's ``xtol`` and ``ftol`` (``xatol``, ``fatol``).
    maxfun : int, optional

    Returns
    -------
    (list of float, float, int, bool)
        The best vertex, its value, the evaluations and whether it stopped on the tolerances.
    """
    n = len(x0)
    x0 = [float(v) for v in x0]
    maxfun = 200 * n if maxfun is None else int(maxfun)
    sim = [list(x0)]
    for k in range(n):
        y = list(x0)
        y[k] = (1 + 0.05) * y[k] if y[k] != 0 else 0.00025
        sim.append(y)
    dims = range(n)
    fsim = [func(p) for p in sim]
    calls = n + 1
    order = sorted(range(n + 1), key=fsim.__getitem__)
    sim, fsim = [sim[i] for i in order], [fsim[i] for i in order]
    iterations = 1
    while calls < maxfun and iterations < maxfun:
        if (max(abs(sim[j][k] - sim[0][k]) for j in range(1, n + 1) for k in dims) <= xtol
                and max(abs(fsim[0] - fsim[j]) for j in range(1, n + 1)) <= ftol):
            break
        xbar = [sum(sim[j][k] for j in range(n)) / n for k in dims] if n > 1 else [sim[0][0] / 1]
        worst = sim[-1]
        xr = [2 * xbar[k] - 1 * worst[k] for k in dims]
        fxr = func(xr)
        calls += 1
        shrink = False
        if fxr < fsim[0]:
            xe = [3 * xbar[k] - 2 * worst[k] for k in dims]
            fxe = func(xe)
            calls += 1
            sim[-1], fsim[-1] = (xe, fxe) if fxe < fxr else (xr, fxr)
        elif fxr < fsim[-2]:
            sim[-1], fsim[-1] = xr, fxr
        elif fxr < fsim[-1]:
            xc = [1.5 * xbar[k] - 0.5 * worst[k] for k in dims]
            fxc = func(xc)
            calls += 1
            if fxc <= fxr:
                sim[-1], fsim[-1] = xc, fxc
            else:
                shrink = True
        else:
            xcc = [0.5 * xbar[k] + 0.5 * worst[k] for k in dims]
            fxcc = func(xcc)
            calls += 1
            if fxcc < fsim[-1]:
                sim[-1], fsim[-1] = xcc, fxcc
            else:
                shrink = True
        if shrink:
            for j in range(1, n + 1):
                sim[j] = [sim[0][k] + 0.5 * (sim[j][k] - sim[0][k]) for k in dims]
                fsim[j] = func(sim[j])
                calls += 1
        iterations += 1
        order = sorted(range(n + 1), key=fsim.__getitem__)
        sim, fsim = [sim[i] for i in order], [fsim[i] for i in order]
    return sim[0], min(fsim), calls, calls < maxfun and iterations < maxfun


def _nelder_mead_method(fun, x0, args=(), **kwargs):
    """:func:`nelder_mead` as a :func:`scipy.optimize.minimize` method (for basin-hopping), with minimize's
    Nelder-Mead defaults (``xatol = fatol = 1e-4``); ``fun`` gets the vertex as a list of floats."""
    x, f, nfev, success = nelder_mead(lambda p: float(fun(p, *args)), np.ravel(x0),
                                      xtol=kwargs.get("xatol", 1e-4), ftol=kwargs.get("fatol", 1e-4),
                                      maxfun=kwargs.get("maxfev"))
    return opt.OptimizeResult(x=np.array(x), fun=f, nfev=nfev, nit=0, success=success, status=0 if success else 1)
