"""timm-registered gated backbones, one module per family. Importing a module registers its
models with ``timm.models.register_model``; import them all here."""
