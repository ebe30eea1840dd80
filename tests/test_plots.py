"""Figures: valid PNG/PDF files, the plotted data, and no change to matplotlib's global state."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.image
import numpy as np
import pytest

from smoothcert.analysis import read_results
from smoothcert.cli.main import main
from smoothcert.noises import get_noise
from smoothcert.plots.certified import (
    new_figure,
    plot_certified_accuracy,
    plot_radius_vs_p_lower,
    save_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def two_runs(tmp_path):
    header = "idx\tlabel\tprediction\tp_lower\tradius_l1\tcorrect\tsamples\tseconds\n"
    # a: correct radii 0.5, 1.0 of 4 rows; b: correct radii 0.2, 0.2, 2.0 of 4 rows
    a = header + "0\t0\t0\t0.7\t0.5\t1\t100\t0.1\n1\t1\t1\t0.9\t1.0\t1\t100\t0.1\n" \
                 "2\t2\t-1\t0.3\t0\t0\t100\t0.1\n3\t3\t4\t0.9\t1.0\t0\t100\t0.1\n"
    b = header + "0\t0\t0\t0.6\t0.2\t1\t100\t0.1\n1\t1\t1\t0.6\t0.2\t1\t100\t0.1\n" \
                 "2\t2\t2\t0.99\t2.0\t1\t100\t0.1\n3\t3\t-1\t0.3\t0\t0\t100\t0.1\n"
    (tmp_path / "a.tsv").write_text(a)
    (tmp_path / "b.tsv").write_text(b)
    return [tmp_path / "a.tsv", tmp_path / "b.tsv"]


def test_certified_plot_draws_the_exact_step_functions(two_runs):
    backend = matplotlib.get_backend()
    figure, ax = new_figure()
    runs = [read_results(p) for p in two_runs]
    plot_certified_accuracy(ax, runs, "l1", max_radius=2.5, points=11)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"a", "b", "envelope"}

    def value_at(label, r):
        x, y = lines[label].get_xdata(), lines[label].get_ydata()
        # the curves are drawn with steps-pre: value y[i] on (x[i-1], x[i]]
        return float(y[np.searchsorted(x, r, side="left")])

    # by hand: a = 2/4 up to 0.5, 1/4 up to 1.0, then 0; b = 3/4 up to 0.2, 1/4 up to 2.0
    for r, a, b in [(0.0, 0.5, 0.75), (0.2, 0.5, 0.75), (0.21, 0.5, 0.25), (0.5, 0.5, 0.25),
                    (0.7, 0.25, 0.25), (1.0, 0.25, 0.25), (1.3, 0.0, 0.25), (2.0, 0.0, 0.25),
                    (2.2, 0.0, 0.0)]:
        assert value_at("a", r) == a and value_at("b", r) == b, r
        assert value_at("envelope", r) == max(a, b), r
    assert matplotlib.get_backend() == backend


def test_save_png_and_pdf(two_runs, tmp_path):
    figure, ax = new_figure()
    plot_certified_accuracy(ax, [read_results(p) for p in two_runs], "l1")
    png = save_figure(figure, tmp_path / "sub" / "fig.png")
    pdf = save_figure(figure, tmp_path / "fig.pdf")
    assert png.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]
    with pytest.raises(ValueError, match=r"\.png or \.pdf"):
        save_figure(figure, tmp_path / "fig.jpg")


def test_radius_plot_matches_closed_forms_and_marks_conversions():
    dim = 3072
    figure, ax = new_figure()
    noises = [get_noise(name, dim=dim, sigma=1.0) for name in ("uniform", "laplace", "gaussian")]
    plot_radius_vs_p_lower(ax, noises, "l1", p_max=0.99, points=50)
    uniform, laplace, gaussian = ax.get_lines()
    assert (uniform.get_label(), laplace.get_label()) == ("uniform", "laplace")
    assert "converted from l2" in gaussian.get_label()
    assert gaussian.get_linestyle() == ":" and uniform.get_linestyle() == "-"
    p = uniform.get_xdata()
    assert p[0] == 0.5 and p[-1] == 0.99
    # SPEC 3.1 at sigma 1: uniform (scale sqrt 3) 2 sqrt(3) (p - 1/2); Laplace (scale 1/sqrt 2)
    # -ln(2 (1 - p)) / sqrt(2)
    np.testing.assert_allclose(uniform.get_ydata(), 2 * math.sqrt(3) * (p - 0.5), rtol=1e-12)
    np.testing.assert_allclose(laplace.get_ydata(), -np.log(2 * (1 - p)) / math.sqrt(2),
                               rtol=1e-9, atol=1e-15)
    # the l2 radius of the Gaussian, Phi^-1(p), carries over to l1 unchanged (||v||_2 <= ||v||_1)
    from scipy.stats import norm as normal
    np.testing.assert_allclose(gaussian.get_ydata(), normal.ppf(p), rtol=1e-10, atol=1e-15)
    # [YDH+20]'s comparison: uniform is best for l1 at moderate p_lower, not at large p_lower
    moderate, large = np.searchsorted(p, 0.8), len(p) - 1
    assert uniform.get_ydata()[moderate] > max(laplace.get_ydata()[moderate],
                                               gaussian.get_ydata()[moderate])
    assert uniform.get_ydata()[large] < laplace.get_ydata()[large]
    with pytest.raises(ValueError, match="does not certify l1"):
        plot_radius_vs_p_lower(ax, noises, "l1", convert=False)


def test_cli_plots(two_runs, tmp_path):
    out = tmp_path / "certified.pdf"
    assert main(["plot", "certified", *map(str, two_runs), "--norm", "l1", "--out",
                 str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF-")
    out = tmp_path / "radius.png"
    assert main(["plot", "radius", "--noises", "uniform,laplace,gaussian", "--sigma", "0.5",
                 "--dim", "784", "--norm", "l1", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert main(["plot", "radius", "--noises", "nonesuch", "--dim", "784", "--norm", "l1",
                 "--out", str(out)]) == 2


def test_noise_spec_parsing():
    from smoothcert.cli.plot import parse_noise_spec, split_top_level

    assert split_top_level("uniform, exp_inf(k=1,j=0),gaussian") == [
        "uniform", "exp_inf(k=1,j=0)", "gaussian"]
    assert parse_noise_spec("exp_inf(k=1, j=0.5)") == ("exp_inf", {"k": 1, "j": 0.5})
    assert parse_noise_spec("gaussian") == ("gaussian", {})
    for bad in ("exp_inf(k)", "1bad"):
        with pytest.raises(ValueError):
            parse_noise_spec(bad)
    with pytest.raises(ValueError, match="unbalanced"):
        split_top_level("a(k=1")


def test_plot_envelopes_draws_one_envelope_per_group(two_runs):
    from smoothcert.plots.certified import plot_envelopes

    a, b = (read_results(p) for p in two_runs)
    figure, ax = new_figure()
    plot_envelopes(ax, {"only a": [a], "a and b": [a, b]}, "l1", max_radius=2.5)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"only a", "a and b"}
    x = lines["a and b"].get_xdata()
    for r, only_a, best in [(0.1, 0.5, 0.75), (0.4, 0.5, 0.5), (0.8, 0.25, 0.25),
                            (1.5, 0.0, 0.25), (2.4, 0.0, 0.0)]:
        i = np.searchsorted(x, r, side="left")
        assert lines["only a"].get_ydata()[i] == only_a
        assert lines["a and b"].get_ydata()[i] == best
    with pytest.raises(ValueError, match="at least one run"):
        plot_envelopes(ax, {"empty": []}, "l1")


# ---------------------------------------------------------------------------------- the look
def _run(path, name, sigma, *, norms=("l1",), convert=False, rows=4, correct=3, n=500,
         alpha=0.001, dim=64):
    """A results file whose run record names its noise; ``correct`` of ``rows`` rows certified
    at radius 0.5 in l1 (the others abstain)."""
    import json

    lines = ["idx\tlabel\tprediction\tp_lower\tradius_l1\tcorrect\tsamples\tseconds"]
    for i in range(rows):
        ok = i < correct
        lines.append(f"{i}\t1\t{1 if ok else -1}\t{0.9 if ok else 0.4}\t{0.5 if ok else 0.0}\t"
                     f"{int(ok)}\t{n}\t0.1")
    path.write_text("\n".join(lines) + "\n")
    record = {"configuration": {"noise": {"name": name, "dim": dim, "sigma": sigma},
                                "n": n, "alpha": alpha, "norms": list(norms),
                                "convert": convert}}
    path.with_suffix(".json").write_text(json.dumps(record))
    return read_results(path)


def test_converted_runs_are_marked_in_the_certified_plot(tmp_path):
    from smoothcert.plots.certified import plot_envelopes

    gaussian = _run(tmp_path / "g.tsv", "gaussian", 0.5, convert=True)
    laplace = _run(tmp_path / "l.tsv", "laplace", 0.5)
    figure, ax = new_figure()
    plot_certified_accuracy(ax, [gaussian, laplace], "l1", show_envelope=False)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"g (converted)", "l"}
    assert lines["g (converted)"].get_linestyle() == ":" and lines["l"].get_linestyle() == "-"
    figure, ax = new_figure()
    plot_envelopes(ax, {"gaussian": [gaussian], "laplace": [laplace]}, "l1")
    assert [line.get_label() for line in ax.get_lines()] == ["gaussian (converted)", "laplace"]
    # the demo already names its converted families so: marked once
    figure, ax = new_figure()
    plot_envelopes(ax, {"gaussian (converted)": [gaussian]}, "l1")
    assert [line.get_label() for line in ax.get_lines()] == ["gaussian (converted)"]


def test_a_family_has_one_colour_in_every_figure(tmp_path):
    from matplotlib.colors import to_hex

    from smoothcert.plots.certified import plot_envelopes
    from smoothcert.plots.style import PALETTE, family_colour

    names = ["dssn", "exp1", "exp2", "exp_inf", "exp_p", "gaussian", "laplace", "pareto",
             "pow2", "pow_inf", "ssn", "uniform", "uniform_ball"]
    assert [family_colour(n, names) for n in names] == list(PALETTE)  # registry order
    assert len({family_colour(n) for n in ("uniform", "laplace", "gaussian")}) == 3
    runs = {name: _run(tmp_path / f"{name}.tsv", name, 0.5) for name in ("uniform", "laplace")}
    figure, ax = new_figure()
    plot_envelopes(ax, {"laplace": [runs["laplace"]], "uniform": [runs["uniform"]]}, "l1")
    envelope_colours = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()}
    figure, ax = new_figure()
    plot_certified_accuracy(ax, [runs["uniform"], runs["laplace"]], "l1", show_envelope=False)
    run_colours = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()}
    figure, ax = new_figure()
    plot_radius_vs_p_lower(ax, [get_noise(n, dim=64, sigma=0.5) for n in ("laplace", "uniform")],
                           "l1")
    radius_colours = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()}
    for name in ("uniform", "laplace"):
        assert envelope_colours[name] == run_colours[name] == radius_colours[name] \
            == family_colour(name)
    # several runs of one family: its colour, in lighter shades
    second = _run(tmp_path / "u2.tsv", "uniform", 1.0)
    figure, ax = new_figure()
    plot_certified_accuracy(ax, [runs["uniform"], second], "l1", show_envelope=False)
    first, lighter = (np.array(matplotlib.colors.to_rgb(line.get_color()))
                      for line in ax.get_lines())
    assert to_hex(first) == family_colour("uniform") and (lighter >= first).all()


def test_the_figure_says_n_alpha_and_the_number_of_images(tmp_path):
    from smoothcert.plots.certified import plot_envelopes

    a = _run(tmp_path / "a.tsv", "uniform", 0.5, n=500, alpha=0.001, rows=200, correct=150)
    b = _run(tmp_path / "b.tsv", "laplace", 0.5, n=1000, alpha=0.001, rows=200, correct=150)
    figure, ax = new_figure()
    plot_certified_accuracy(ax, [a, b], "l1", title="MNIST")
    assert ax.get_title() == "MNIST\nn = 500, 1,000, α = 0.001, 200 images"
    figure, ax = new_figure()
    plot_envelopes(ax, {"uniform": [a]}, "l1")
    assert ax.get_title() == "n = 500, α = 0.001, 200 images"


def test_the_accuracy_axis_fits_the_data(tmp_path):
    low = _run(tmp_path / "low.tsv", "uniform", 0.5, rows=102, correct=35)  # 0.343
    figure, ax = new_figure()
    plot_certified_accuracy(ax, [low], "l1")
    bottom, top = ax.get_ylim()
    assert bottom == 0.0 and 35 / 102 + 0.05 <= top == pytest.approx(0.4)
    high = _run(tmp_path / "high.tsv", "uniform", 0.5, rows=100, correct=97)
    figure, ax = new_figure()
    plot_certified_accuracy(ax, [high], "l1")
    assert ax.get_ylim() == (0.0, 1.0)


def test_risk_figures_say_where_an_error_of_zero_is_drawn():
    from smoothcert.pal_sulam.risk.analysis import RiskTable
    from smoothcert.plots.risk import risk_curves_figure, risk_heatmap_figure

    alphas, betas = np.array([0.0, 0.25, 0.5]), np.array([0.5])
    n = np.full((3, 1), 20)
    errors = np.array([[2], [0], [1]])
    table = RiskTable(alphas=alphas, betas=betas, n_errors=errors, n=n)
    curves = risk_curves_figure(table, window=3, order=1)
    assert "0.5/n" in curves.axes[0].get_ylabel()
    heatmap = risk_heatmap_figure(table)
    assert any("0.5/n" in ax.get_ylabel() for ax in heatmap.axes)  # the colour bar


def test_the_caption_names_exact_runs_and_gives_n_alpha_of_the_sampled_ones():
    import numpy as np

    from smoothcert.analysis.results import CertificationResults
    from smoothcert.norms import Norm
    from smoothcert.plots.certified import run_caption

    def run(label, configuration):
        ones = np.ones(3, dtype=np.int64)
        return CertificationResults(label=label, idx=np.arange(3), true_label=ones,
                                    prediction=ones, correct=ones.astype(bool),
                                    radius={Norm.L1: np.full(3, 0.5)},
                                    run={"configuration": configuration})

    sampled = run("uniform-1.0", {"n": 100000, "alpha": 0.001, "mode": "adaptive"})
    exact = run("dssn-1.0", {"mode": "deterministic"})
    assert run_caption([sampled]) == "n = 100,000, α = 0.001, 3 images"
    assert run_caption([sampled, exact]) == "n = 100,000, α = 0.001; exact: dssn-1.0; 3 images"
    assert run_caption([exact]) == "exact; 3 images"
