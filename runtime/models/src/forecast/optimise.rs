//! Derivative-free minimisation for the few smoothing parameters: golden-section search on an interval and
//! Nelder–Mead on a box (each coordinate mapped through a logistic function, so every point tried is inside).

/// The golden ratio's conjugate, (√5 − 1) / 2.
const INV_PHI: f64 = 0.618_033_988_749_894_9;

/// The minimiser of `f` on `[lo, hi]` to within `tol`, assuming one valley; `f` is also tried on an even grid of
/// `grid` points first, and the search narrowed to the best point's neighbours, so a second valley rarely fools it.
pub(crate) fn minimise_interval(
    f: impl Fn(f64) -> f64,
    lo: f64,
    hi: f64,
    grid: usize,
    tol: f64,
) -> f64 {
    let grid = grid.max(2);
    let step = (hi - lo) / (grid - 1) as f64;
    let best =
        (0..grid)
            .map(|i| (i, f(lo + step * i as f64)))
            .fold(
                (0, f64::INFINITY),
                |best, (i, v)| if v < best.1 { (i, v) } else { best },
            );
    let (mut a, mut b) = (
        lo + step * best.0.saturating_sub(1) as f64,
        (lo + step * (best.0 + 1) as f64).min(hi),
    );
    let mut c = b - INV_PHI * (b - a);
    let mut d = a + INV_PHI * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while b - a > tol {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - INV_PHI * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + INV_PHI * (b - a);
            fd = f(d);
        }
    }
    let middle = (a + b) / 2.0;
    let grid_best = lo + step * best.0 as f64;
    if f(middle) <= best.1 {
        middle
    } else {
        grid_best
    }
}

/// A box `[lo, hi]` per coordinate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub lo: f64,
    pub hi: f64,
}

impl Bounds {
    fn inside(self, u: f64) -> f64 {
        self.lo + (self.hi - self.lo) / (1.0 + (-u).exp())
    }

    fn unbounded(self, x: f64) -> f64 {
        let p = ((x - self.lo) / (self.hi - self.lo)).clamp(1e-9, 1.0 - 1e-9);
        (p / (1.0 - p)).ln()
    }
}

/// The minimiser of `f` inside `bounds`, by Nelder–Mead (reflection 1, expansion 2, contraction and shrink ½)
/// from `start`, stopping after `max_evals` evaluations or when the simplex's values differ by less than `tol`.
pub(crate) fn nelder_mead(
    f: impl Fn(&[f64]) -> f64,
    start: &[f64],
    bounds: &[Bounds],
    max_evals: usize,
    tol: f64,
) -> Vec<f64> {
    let n = start.len();
    let to_box =
        |u: &[f64]| -> Vec<f64> { u.iter().zip(bounds).map(|(u, b)| b.inside(*u)).collect() };
    let value = |u: &[f64]| f(&to_box(u));
    let origin: Vec<f64> = start
        .iter()
        .zip(bounds)
        .map(|(x, b)| b.unbounded(*x))
        .collect();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((origin.clone(), value(&origin)));
    for i in 0..n {
        let mut vertex = origin.clone();
        vertex[i] += 1.0;
        let v = value(&vertex);
        simplex.push((vertex, v));
    }
    let mut evals = n + 1;
    let towards = |from: &[f64], to: &[f64], t: f64| -> Vec<f64> {
        from.iter().zip(to).map(|(a, b)| a + t * (b - a)).collect()
    };
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if simplex[n].1 - simplex[0].1 <= tol {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|i| simplex[..n].iter().map(|(v, _)| v[i]).sum::<f64>() / n as f64)
            .collect();
        let worst = simplex[n].0.clone();
        let reflected = towards(&centroid, &worst, -1.0);
        let fr = value(&reflected);
        evals += 1;
        if fr < simplex[0].1 {
            let expanded = towards(&centroid, &worst, -2.0);
            let fe = value(&expanded);
            evals += 1;
            simplex[n] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let (toward, f_toward) = if fr < simplex[n].1 {
                (reflected, fr)
            } else {
                (worst, simplex[n].1)
            };
            let contracted = towards(&centroid, &toward, 0.5);
            let fc = value(&contracted);
            evals += 1;
            if fc < f_toward {
                simplex[n] = (contracted, fc);
            } else {
                let best = simplex[0].0.clone();
                for vertex in simplex.iter_mut().skip(1) {
                    vertex.0 = towards(&best, &vertex.0, 0.5);
                    vertex.1 = value(&vertex.0);
                }
                evals += n;
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    to_box(&simplex[0].0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_section_finds_the_bottom_of_a_parabola() {
        let x = minimise_interval(|x| (x - 0.3).powi(2), 0.0, 1.0, 11, 1e-8);
        assert!((x - 0.3).abs() < 1e-6, "{x}");
        // A minimum on the boundary is found too.
        let x = minimise_interval(|x| x, 0.2, 0.9, 11, 1e-8);
        assert!((x - 0.2).abs() < 1e-6, "{x}");
    }

    #[test]
    fn nelder_mead_finds_the_bottom_of_a_bowl_inside_the_box() {
        let bounds = [Bounds { lo: 0.0, hi: 1.0 }, Bounds { lo: -2.0, hi: 2.0 }];
        let x = nelder_mead(
            |x| (x[0] - 0.7).powi(2) + 3.0 * (x[1] + 0.5).powi(2),
            &[0.5, 0.0],
            &bounds,
            2000,
            1e-14,
        );
        assert!(
            (x[0] - 0.7).abs() < 1e-4 && (x[1] + 0.5).abs() < 1e-4,
            "{x:?}"
        );
        // Outside the box, the answer stays at its edge.
        let x = nelder_mead(|x| (x[0] - 5.0).powi(2), &[0.5], &bounds[..1], 2000, 1e-14);
        assert!(x[0] > 0.99 && x[0] <= 1.0, "{x:?}");
    }
}
