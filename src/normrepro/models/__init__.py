"""Model zoo: ``build_model(cfg.model, cfg.norm, input_shape, num_classes)``."""

from normrepro.models.build import ARCHS, build_model

__all__ = ["ARCHS", "build_model"]
