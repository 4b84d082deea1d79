"""The names of a model bundle's files and folders."""
SAVED_MODEL, TOKENIZER, LABELS, METADATA = "saved_model", "tokenizer", "labels.json", "metadata.json"
INT8_FILE, NGRAM_FILE = "model.int8.tflite", "ngram.npz"
