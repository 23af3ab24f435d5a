from .models.gpt2.tokenization_gpt2 import bytes_to_unicode  # noqa: F401
