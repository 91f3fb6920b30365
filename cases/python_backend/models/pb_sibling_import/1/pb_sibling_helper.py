"""A module next to model.py: the stub puts the model's folder on sys.path."""


def shout(text: str) -> str:
    return f"helper says {text.upper()}!"
