"""Hard limits on a spec: they keep absurd or hostile documents cheap to reject."""

MAX_DOCUMENT_BYTES = 256_000  # a real spec is a few KB; this is checked before parsing
MAX_LAYERS = 200  # counting the layers inside residual blocks
MAX_DEPTH = 4  # residual blocks inside residual blocks
MAX_UNITS = 65_536  # features, channels, hidden sizes
MAX_KERNEL = 64  # kernel sizes, strides and paddings
MAX_POOL_OUTPUT = 1_024  # adaptive pooling's output height and width
MAX_VOCAB = 1_000_000
MAX_RNN_LAYERS = 16
MAX_HEADS = 256
MAX_EPOCHS = 1_000
MAX_BATCH = 65_536
MAX_LR = 10
MAX_SEED = 2**31 - 1
MAX_ELEMENTS = 2**31  # values per sample in any one layer's output
MAX_PARAMS = 2**31  # parameters in the whole model, whatever the exercise allows
MAX_SETTINGS = 32  # keys in any one object of the document
MAX_PROBLEMS = 100  # more are summarised in one last problem
