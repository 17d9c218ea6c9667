"""What people read: the HTML lead board, a lead's card in the terminal, the model card, and plots."""
