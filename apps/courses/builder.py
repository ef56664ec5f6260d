"""The model builder's words: labels of settings and choices in the user's language (the
builder's JavaScript takes them from the page, so the runtime's names stay out of sight)."""

from django.utils.translation import gettext_lazy as _

# By setting name; "section.name" where a name means something else in a section.
FIELD_LABELS = {
    "optimizer.type": _("Optimizer"),
    "lr": _("Learning rate"),
    "momentum": _("Momentum"),
    "nesterov": _("Nesterov momentum"),
    "weight_decay": _("Weight decay"),
    "epochs": _("Epochs"),
    "batch_size": _("Batch size"),
    "loss": _("Loss function"),
    "seed": _("Random seed"),
    "out_features": _("Out features"),
    "in_features": _("In features"),
    "bias": _("Bias"),
    "out_channels": _("Out channels"),
    "in_channels": _("In channels"),
    "kernel_size": _("Kernel size"),
    "stride": _("Stride"),
    "padding": _("Padding"),
    "output_size": _("Output size"),
    "num_features": _("Features"),
    "p": _("Drop probability"),
    "embedding_dim": _("Vector length"),
    "num_embeddings": _("Vocabulary size"),
    "hidden_size": _("Hidden size"),
    "num_layers": _("Stacked layers"),
    "bidirectional": _("Bidirectional"),
    "output": _("Output"),
    "dropout": _("Dropout"),
    "nhead": _("Attention heads"),
    "dim_feedforward": _("Feed-forward size"),
    "activation": _("Activation"),
}

CHOICE_LABELS = {
    "sgd": _("SGD (stochastic gradient descent)"),
    "adam": _("Adam"),
    "adamw": _("AdamW"),
    "rmsprop": _("RMSprop"),
    "cross_entropy": _("Cross-entropy"),
    "binary_cross_entropy": _("Binary cross-entropy"),
    "mse": _("Mean squared error"),
    "": _("Automatic"),
}

# The builder's sentences (static/js/builder.js, assignment.js); {names} are filled in there.
MESSAGES = {
    "layers_label": _("Layers, first to last"),
    "add_layer": _("Add layer"),
    "add_layer_inside": _("Add layer inside"),
    "layer_type": _("Layer type"),
    "layer_type_inside": _("Layer type inside block {block}"),
    "unknown_layer": _("Unknown layer “{type}”"),
    "move_up": _("Move layer {position} up"),
    "move_down": _("Move layer {position} down"),
    "remove": _("Remove"),
    "remove_layer": _("Remove layer {position}"),
    "layers_inside": _("Layers inside block {block}"),
    "training": _("Training"),
    "inferred": _("inferred"),
    "pair_example": _("3 or 3, 5"),
    "not_checked": _("The model could not be checked."),
    "no_answer_check": _(
        "The model could not be checked: the server did not answer. Your changes are kept."
    ),
    "layer_report": _("→ {shape} · {params} parameters"),
    "valid": _("The model is valid: {params} parameters, output {shape}."),
    "problems_one": _("{count} problem to fix before submitting."),
    "problems_other": _("{count} problems to fix before submitting."),
    "checking": _("Checking the model…"),
    "invalid": _("Fix the problems the builder lists before submitting."),
    "refused": _("The submission was refused."),
    "no_answer": _("The server did not answer; nothing was submitted. Try again."),
}


def builder_words() -> dict:
    return {"fields": FIELD_LABELS, "choices": CHOICE_LABELS, "messages": MESSAGES}
