"""Reading images: IDX files, image folders, the dataset on the training device and its cache."""
