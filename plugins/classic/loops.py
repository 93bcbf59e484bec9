"""The training loops of the classic scripts, kept as the scripts write them.

Each class holds one script's networks, loss and optimizers; ``train`` is the
script's ``for epoch ... for i, batch in enumerate(dataloader)`` loop and
yields ``(images, d_loss, g_loss)`` after every batch, from the ``.item()``
calls the script makes for its print. What makes these loops slow is kept on
purpose: the DataLoader's per-sample transforms, NumPy noise copied to the
device every step, ``.item()`` and a print every batch, D's weight gradients
computed during G's step, the default (single-tensor) Adam, and the sample
images saved at the scripts' intervals.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np
import torch
import torchvision.utils as vutils
from torchvision.utils import save_image

from plugins.classic.models import (AaeDecoder, AaeDiscriminator, AaeEncoder, DcganDiscriminator,
                                            DcganGenerator, GanDiscriminator, GanGenerator, weights_init)

Step = tuple[int, float, float]  # images in the batch, D loss, G loss


def _null_stream() -> TextIO:
    return open(os.devnull, "w")


class ClassicGan:
    """PyTorch-GAN ``gan.py``: G's step then D's, ``BCELoss`` on a Sigmoid, noise from ``np.random.normal``."""

    sample_interval = 400
    save_samples = True  # the tests turn the progress grids off; they are not part of the algorithm

    def __init__(self, hp: dict, img_shape: tuple[int, int, int], device: torch.device, images_dir: Path,
                 stream: TextIO | None = None):
        self.hp, self.device, self.images_dir = hp, torch.device(device), Path(images_dir)
        self.stream = stream or _null_stream()
        self.generator = GanGenerator(hp["latent_dim"], img_shape).to(self.device)
        self.discriminator = GanDiscriminator(img_shape).to(self.device)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.adversarial_loss = torch.nn.BCELoss().to(self.device)
        betas = (hp["b1"], hp["b2"])
        self.optimizer_G = torch.optim.Adam(self.generator.parameters(), lr=hp["lr"], betas=betas)
        self.optimizer_D = torch.optim.Adam(self.discriminator.parameters(), lr=hp["lr"], betas=betas)

    def Tensor(self, array) -> torch.Tensor:
        """``Tensor(np_array)`` of the script: a float32 copy on the training device."""
        return torch.as_tensor(array, dtype=torch.float32, device=self.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images from noise of shape (N, latent_dim), for the sample grid of the equal-quality check."""
        return self.generator(z)

    def train(self, dataloader, n_epochs: int) -> Iterator[Step]:
        opt, device = self.hp, self.device
        generator, discriminator, adversarial_loss = self.generator, self.discriminator, self.adversarial_loss
        optimizer_G, optimizer_D = self.optimizer_G, self.optimizer_D
        for epoch in range(n_epochs):
            for i, (imgs, _) in enumerate(dataloader):

                # Adversarial ground truths
                valid = torch.full((imgs.size(0), 1), 1.0, device=device, requires_grad=False)
                fake = torch.full((imgs.size(0), 1), 0.0, device=device, requires_grad=False)

                # Configure input
                real_imgs = imgs.to(device=device, dtype=torch.float32)

                # -----------------
                #  Train Generator
                # -----------------

                optimizer_G.zero_grad()

                # Sample noise as generator input
                z = self.Tensor(np.random.normal(0, 1, (imgs.shape[0], opt["latent_dim"])))

                # Generate a batch of images
                gen_imgs = generator(z)

                # Loss measures generator's ability to fool the discriminator
                g_loss = adversarial_loss(discriminator(gen_imgs), valid)

                g_loss.backward()
                optimizer_G.step()

                # ---------------------
                #  Train Discriminator
                # ---------------------

                optimizer_D.zero_grad()

                # Measure discriminator's ability to classify real from generated samples
                real_loss = adversarial_loss(discriminator(real_imgs), valid)
                fake_loss = adversarial_loss(discriminator(gen_imgs.detach()), fake)
                d_loss = (real_loss + fake_loss) / 2

                d_loss.backward()
                optimizer_D.step()

                d_value, g_value = d_loss.item(), g_loss.item()
                print(
                    "[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f]"
                    % (epoch, n_epochs, i, len(dataloader), d_value, g_value), file=self.stream
                )

                batches_done = epoch * len(dataloader) + i
                if self.save_samples and batches_done % self.sample_interval == 0:
                    save_image(gen_imgs.data[:25], self.images_dir / ("%d.png" % batches_done), nrow=5,
                               normalize=True)
                yield imgs.size(0), d_value, g_value


class ClassicAae:
    """PyTorch-GAN ``aae.py``: the autoencoder's step (0.001 adversarial + 0.999 L1), then D's on the latent code."""

    sample_interval = 400
    save_samples = True  # the tests turn the progress grids off: aae.py draws their noise from the same stream

    def __init__(self, hp: dict, img_shape: tuple[int, int, int], device: torch.device, images_dir: Path,
                 stream: TextIO | None = None):
        self.hp, self.device, self.images_dir = hp, torch.device(device), Path(images_dir)
        self.stream = stream or _null_stream()
        latent_dim = hp["latent_dim"]
        self.encoder = AaeEncoder(img_shape, latent_dim).to(self.device)
        self.decoder = AaeDecoder(img_shape, latent_dim).to(self.device)
        self.discriminator = AaeDiscriminator(latent_dim).to(self.device)
        self.networks = {"encoder": self.encoder, "decoder": self.decoder, "discriminator": self.discriminator}
        self.adversarial_loss = torch.nn.BCELoss().to(self.device)
        self.pixelwise_loss = torch.nn.L1Loss().to(self.device)
        betas = (hp["b1"], hp["b2"])
        self.optimizer_G = torch.optim.Adam(itertools.chain(self.encoder.parameters(), self.decoder.parameters()),
                                            lr=hp["lr"], betas=betas)
        self.optimizer_D = torch.optim.Adam(self.discriminator.parameters(), lr=hp["lr"], betas=betas)

    def Tensor(self, array) -> torch.Tensor:
        """``Tensor(np_array)`` of the script: a float32 copy on the training device."""
        return torch.as_tensor(array, dtype=torch.float32, device=self.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images from latent codes of shape (N, latent_dim), for the sample grid of the equal-quality check."""
        return self.decoder(z)

    def sample_image(self, n_row: int, batches_done: int) -> None:
        """Saves a grid of generated digits"""
        # Sample noise
        z = self.Tensor(np.random.normal(0, 1, (n_row ** 2, self.hp["latent_dim"])))
        gen_imgs = self.decoder(z)
        save_image(gen_imgs.data, self.images_dir / ("%d.png" % batches_done), nrow=n_row, normalize=True)

    def train(self, dataloader, n_epochs: int) -> Iterator[Step]:
        opt, device, w = self.hp, self.device, self.hp["adv_weight"]
        encoder, decoder, discriminator = self.encoder, self.decoder, self.discriminator
        adversarial_loss, pixelwise_loss = self.adversarial_loss, self.pixelwise_loss
        optimizer_G, optimizer_D = self.optimizer_G, self.optimizer_D
        for epoch in range(n_epochs):
            for i, (imgs, _) in enumerate(dataloader):

                # Adversarial ground truths
                valid = torch.full((imgs.shape[0], 1), 1.0, device=device, requires_grad=False)
                fake = torch.full((imgs.shape[0], 1), 0.0, device=device, requires_grad=False)

                # Configure input
                real_imgs = imgs.to(device=device, dtype=torch.float32)

                # -----------------
                #  Train Generator
                # -----------------

                optimizer_G.zero_grad()

                encoded_imgs = encoder(real_imgs)
                decoded_imgs = decoder(encoded_imgs)

                # Loss measures generator's ability to fool the discriminator
                g_loss = w * adversarial_loss(discriminator(encoded_imgs), valid) + (1 - w) * pixelwise_loss(
                    decoded_imgs, real_imgs
                )

                g_loss.backward()
                optimizer_G.step()

                # ---------------------
                #  Train Discriminator
                # ---------------------

                optimizer_D.zero_grad()

                # Sample noise as discriminator ground truth
                z = self.Tensor(np.random.normal(0, 1, (imgs.shape[0], opt["latent_dim"])))

                # Measure discriminator's ability to classify real from generated samples
                real_loss = adversarial_loss(discriminator(z), valid)
                fake_loss = adversarial_loss(discriminator(encoded_imgs.detach()), fake)
                d_loss = 0.5 * (real_loss + fake_loss)

                d_loss.backward()
                optimizer_D.step()

                d_value, g_value = d_loss.item(), g_loss.item()
                print(
                    "[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f]"
                    % (epoch, n_epochs, i, len(dataloader), d_value, g_value), file=self.stream
                )

                batches_done = epoch * len(dataloader) + i
                if self.save_samples and batches_done % self.sample_interval == 0:
                    self.sample_image(n_row=10, batches_done=batches_done)
                yield imgs.shape[0], d_value, g_value


class ClassicDcgan:
    """The PyTorch DCGAN tutorial: D's step on a real then a fake batch, then G's; ``BCELoss`` on a Sigmoid."""

    real_label, fake_label = 1., 0.
    sample_interval = 500
    save_samples = True  # the tests turn the progress grids off: they run G in train mode (BatchNorm statistics)

    def __init__(self, hp: dict, img_shape: tuple[int, int, int], device: torch.device, images_dir: Path,
                 stream: TextIO | None = None):
        self.hp, self.device, self.images_dir = hp, torch.device(device), Path(images_dir)
        self.stream = stream or _null_stream()
        nc, nz = img_shape[0], hp["latent_dim"]
        self.netG = DcganGenerator(nz, hp["ngf"], nc, hp["image_size"]).to(self.device)
        self.netG.apply(weights_init)
        self.netD = DcganDiscriminator(hp["ndf"], nc, hp["image_size"]).to(self.device)
        self.netD.apply(weights_init)
        self.networks = {"generator": self.netG, "discriminator": self.netD}
        self.criterion = torch.nn.BCELoss()
        # Create batch of latent vectors that we will use to visualize the progression of the generator
        self.fixed_noise = torch.randn(64, nz, 1, 1, device=self.device)
        betas = (hp["b1"], hp["b2"])
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=hp["lr"], betas=betas)
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=hp["lr"], betas=betas)
        self.img_list: list[torch.Tensor] = []
        self.G_losses: list[float] = []
        self.D_losses: list[float] = []

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images from noise of shape (N, nz), for the sample grid of the equal-quality check."""
        return self.netG(z.view(z.shape[0], z.shape[1], 1, 1))

    def train(self, dataloader, num_epochs: int) -> Iterator[Step]:
        netG, netD, criterion, device = self.netG, self.netD, self.criterion, self.device
        optimizerD, optimizerG, nz = self.optimizerD, self.optimizerG, self.hp["latent_dim"]
        real_label, fake_label = self.real_label, self.fake_label
        iters = 0
        for epoch in range(num_epochs):
            # For each batch in the dataloader
            for i, data in enumerate(dataloader, 0):

                ############################
                # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
                ###########################
                ## Train with all-real batch
                netD.zero_grad()
                # Format batch
                real_cpu = data[0].to(device)
                b_size = real_cpu.size(0)
                label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
                # Forward pass real batch through D
                output = netD(real_cpu).view(-1)
                # Calculate loss on all-real batch
                errD_real = criterion(output, label)
                # Calculate gradients for D in backward pass
                errD_real.backward()
                D_x = output.mean().item()

                ## Train with all-fake batch
                # Generate batch of latent vectors
                noise = torch.randn(b_size, nz, 1, 1, device=device)
                # Generate fake image batch with G
                fake = netG(noise)
                label.fill_(fake_label)
                # Classify all fake batch with D
                output = netD(fake.detach()).view(-1)
                # Calculate D's loss on the all-fake batch
                errD_fake = criterion(output, label)
                # Calculate the gradients for this batch, accumulated (summed) with previous gradients
                errD_fake.backward()
                D_G_z1 = output.mean().item()
                # Compute error of D as sum over the fake and the real batches
                errD = errD_real + errD_fake
                # Update D
                optimizerD.step()

                ############################
                # (2) Update G network: maximize log(D(G(z)))
                ###########################
                netG.zero_grad()
                label.fill_(real_label)  # fake labels are real for generator cost
                # Since we just updated D, perform another forward pass of all-fake batch through D
                output = netD(fake).view(-1)
                # Calculate G's loss based on this output
                errG = criterion(output, label)
                # Calculate gradients for G
                errG.backward()
                D_G_z2 = output.mean().item()
                # Update G
                optimizerG.step()

                # Output training stats
                if i % 50 == 0:
                    print('[%d/%d][%d/%d]\tLoss_D: %.4f\tLoss_G: %.4f\tD(x): %.4f\tD(G(z)): %.4f / %.4f'
                          % (epoch, num_epochs, i, len(dataloader),
                             errD.item(), errG.item(), D_x, D_G_z1, D_G_z2), file=self.stream)

                # Save Losses for plotting later
                self.G_losses.append(errG.item())
                self.D_losses.append(errD.item())

                # Check how the generator is doing by saving G's output on fixed_noise
                if self.save_samples and ((iters % self.sample_interval == 0) or
                                          ((epoch == num_epochs - 1) and (i == len(dataloader) - 1))):
                    with torch.no_grad():
                        fake = netG(self.fixed_noise).detach().cpu()
                    self.img_list.append(vutils.make_grid(fake, padding=2, normalize=True))

                iters += 1
                yield b_size, self.D_losses[-1], self.G_losses[-1]
