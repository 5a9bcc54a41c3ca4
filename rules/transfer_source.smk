# The transfer study's source task on another cohort (studies.transfer.source: synthetic): the
# embedded synthetic cohort (AD vs CN) is generated, preprocessed and pretrained on under
# results/transfer-source/, by this same workflow loaded as a module with its own config.


if TRANSFER_SOURCE == "synthetic":

    module transfer_source:
        snakefile:
            "../Snakefile"
        config:
            TRANSFER_SOURCE_CONFIG
        prefix:
            TRANSFER_SOURCE_DIR

    use rule * from transfer_source exclude all, preprocess, train, attribute, analyse, figures as transfer_source_*
