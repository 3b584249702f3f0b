"""The pages, by what a person is doing: signing in, recovering access, their account."""
