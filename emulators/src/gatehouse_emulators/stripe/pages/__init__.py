"""The pages a person clicks through: hosted Checkout and the hosted invoice."""
