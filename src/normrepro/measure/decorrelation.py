"""How far each normalization layer's output is from white: ||Cov(x_hat) - I||_F (``probes.decorrelation``).

[DBN] (Huang et al., CVPR 2018, Sec. 3) motivates whitening by the covariance of a layer's output:
standardization (BN) makes its diagonal 1 and leaves the correlations between units, whitening makes the
whole covariance the identity. The instrument measures exactly that on the probe examples (the first
``probes.examples`` validation images), at every evaluation, for the normalized values x_hat before the
affine (gamma, beta rescale units and would move the diagonal), per layer:

- ``decor_err``: the mean over the layer's feature groups of ||Cov_g(x_hat) - I||_F, where the groups are the
  whitening layer's own groups, and for BN the groups ``norm.group_size`` would give it (the same pairs of
  units in every arm). This is what a group-whitening layer promises to remove.
- ``decor_err_layer``: ||Cov(x_hat) - I||_F over all units of the layer (group whitening leaves the
  correlations between groups: this shows how much).

Two statistics modes, the ``bn_mode`` of the rows:
- ``batch@B``: the probe examples in batches of B (the training batch size; a remainder is dropped), each
  normalized with its own batch statistics, as in training, and its covariance taken within that batch; the
  norms are averaged over batches. Whitening makes this the identity by construction (up to eps).
- ``population``: eval mode, every layer with its running statistics, one covariance over all probe
  examples: whether the running whitening matrix still decorrelates the network as deployed.
The covariance is the biased one (divide by m), centered on the examples' own mean, as the layers use.
"""

from __future__ import annotations

import torch

from normrepro.measure.base import Context, Instrument, probe_examples, write_rows
from normrepro.measure.norm_outputs import NormInputs, feature_groups, normalized_output
from normrepro.norms.modes import batch_statistics


def covariance_error(z: torch.Tensor, groups: list[tuple[int, int]]) -> tuple[float, float]:
    """(mean over groups of ||Cov_g - I||_F, ||Cov - I||_F) for samples z (m, C); float64."""
    z = z.double()
    zc = z - z.mean(0)
    cov = zc.T @ zc / z.shape[0]
    eye = torch.eye(z.shape[1], dtype=cov.dtype, device=cov.device)
    per_group = [(cov[a:b, a:b] - eye[a:b, a:b]).norm().item() for a, b in groups]
    return sum(per_group) / len(per_group), (cov - eye).norm().item()


class Decorrelation(Instrument):
    """Rows ``decor_err`` / ``decor_err_layer`` of split ``probe`` per layer at every evaluation."""

    name = "decorrelation"

    def __init__(self, model, x: torch.Tensor, batch_size: int, group_size: int):
        self.inputs = NormInputs(model)
        self.x, self.batch_size, self.group_size = x, batch_size, group_size

    @classmethod
    def build(cls, cfg, model, splits, batches):
        if not cfg.probes.decorrelation:
            return None
        return cls(model, probe_examples(cfg, splits)[0], cfg.train.batch_size, cfg.norm.group_size)

    @torch.no_grad()
    def on_evaluate(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "probe", self.rows(ctx.model))

    @torch.no_grad()
    def rows(self, model) -> list[dict]:
        rows = []
        was_training = model.training
        model.eval()
        with self.inputs:
            model(self.x)
        model.train(was_training)
        rows += self._layer_rows([dict(self.inputs.inputs)], batch=False, mode="population")
        n = len(self.x) // self.batch_size
        captured = []
        with batch_statistics(model):
            for i in range(n):
                with self.inputs:
                    model(self.x[i * self.batch_size:(i + 1) * self.batch_size])
                captured.append(dict(self.inputs.inputs))
        if captured:
            rows += self._layer_rows(captured, batch=True, mode=f"batch@{self.batch_size}")
        return rows

    def _layer_rows(self, captured: list[dict], batch: bool, mode: str) -> list[dict]:
        rows = []
        for i, norm in enumerate(self.inputs.norms):
            errs = []
            for inputs in captured:
                z = normalized_output(norm, inputs[i], batch)
                if z is None:
                    break
                errs.append(covariance_error(z, feature_groups(norm, z.shape[1], self.group_size)))
            if not errs:
                continue
            layer = str(i + 1)
            rows += [{"metric": "decor_err", "value": sum(e[0] for e in errs) / len(errs), "layer": layer,
                      "bn_mode": mode},
                     {"metric": "decor_err_layer", "value": sum(e[1] for e in errs) / len(errs), "layer": layer,
                      "bn_mode": mode}]
        return rows
