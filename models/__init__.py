"""The image classifier: Keras MobileNet v1 (alpha 0.75, 224x224) on ImageNet."""
