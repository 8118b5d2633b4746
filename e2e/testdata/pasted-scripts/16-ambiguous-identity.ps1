#! fails: Get-Mailbox : The operation couldn't be performed because 'Chris Jones' matches multiple entries: 'chris' (chris@contoso.com), 'akol' (akol@contoso.com).
Set-Mailbox -Identity akol -DisplayName "Chris Jones"
Get-Mailbox -Identity "Chris Jones"
