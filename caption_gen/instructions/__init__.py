"""Captioning instructions: static, dynamic (TDE), identity/clothing dual prompts, styled variants."""
