"""The data pipeline: text to token ids, splits and batches, and the prepared corpus folder."""
