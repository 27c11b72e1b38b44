"""Outgoing e-mail over SMTP (smtplib), configured in crm.ini:

    crm.mail.host = smtp.example.com
    crm.mail.port = 465
    crm.mail.ssl = true            # or crm.mail.starttls = true
    crm.mail.username = crm@example.com
    crm.mail.password =            # better: CRM_MAIL_PASSWORD in the environment
    crm.mail.from = CRM <crm@example.com>
"""
import os
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


class Mailer:
    def __init__(self, host, port=25, sender="crm@localhost", username=None, password=None, ssl=False, starttls=False, timeout=30):
        self.host, self.port, self.sender = host, int(port), sender
        self.username, self.password = username, password
        self.ssl, self.starttls, self.timeout = ssl, starttls, timeout

    @classmethod
    def from_settings(cls, settings):
        """A mailer from crm.ini settings, or None when no mail server is configured."""
        host = settings.get("crm.mail.host")
        if not host:
            return None
        flag = lambda key: str(settings.get(key, "")).lower() in ("1", "true", "yes", "on")
        return cls(host, settings.get("crm.mail.port", 25), settings.get("crm.mail.from", "crm@localhost"),
                   settings.get("crm.mail.username") or None,
                   os.environ.get("CRM_MAIL_PASSWORD") or settings.get("crm.mail.password") or None,
                   ssl=flag("crm.mail.ssl"), starttls=flag("crm.mail.starttls"))

    def send(self, to, subject, text):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message["Date"], message["Message-ID"] = formatdate(localtime=True), make_msgid(domain="crm")
        message.set_content(text)
        smtp_class = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)
