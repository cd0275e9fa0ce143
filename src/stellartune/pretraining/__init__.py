"""Continued pretraining on unlabeled text (`stellartune pretrain`).

- corpus.py: documents from a .txt file or a table
- blocks.py: documents -> packed blocks, one block per document, or NSP sentence pairs
- masking.py: token, whole-word and span selection, BERT's 80/10/10, the masking collator
- objectives.py: the MLM model with NSP and SBO heads, returning per-block loss statistics
- task.py: pretraining as a task of the training engine
- recipe.py: the `pretrain` command, top to bottom
"""
