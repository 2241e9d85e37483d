"""Count the words in a piece of text, and remember the count as an artifact."""


async def run(text: str, save_as: str | None = None) -> int:
    """Count words.

    Args:
        text: the text to count
        save_as: artifact name to store the count under (optional)
    """
    count = len(text.split())
    if save_as:
        artifacts.save(save_as, {"text": text[:80], "words": count}, description="a word count")
    return count
